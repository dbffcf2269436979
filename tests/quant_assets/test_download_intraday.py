"""`quant download` for intraday intervals: the `intraday_bars` asset materialized for the symbols and
interval asked, keeping what its partitions held; provider limits and bad intervals named first."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from click.testing import CliRunner
from dagster import Definitions, define_asset_job

from quant_assets import intraday, market
from quant_assets.cli import main
from quant_assets.download import DownloadError, check_plan, download_intraday, preflight
from quant_assets.partitions import trading_day_partitions
from quant_resources.providers.yfinance_intraday import YFinanceIntraday
from quant_resources.warehouse import Warehouse

FIRST, LAST = date(2024, 6, 26), date(2024, 6, 28)


def test_intraday_download_adds_symbols_and_intervals_without_dropping_held_bars(sim_resources, instance, warehouse_path):
    defs = Definitions(assets=[market.universe, market.prices, intraday.intraday_bars], resources=sim_resources,
                       jobs=[define_asset_job("daily_job", partitions_def=trading_day_partitions)])
    market_data, warehouse = sim_resources["market_data"], Warehouse(warehouse_path)
    configured = market_data.resolve_intraday_symbols()
    tickers = market_data.get_provider().universe().filter(pl.col("asset_class") == "equity")["ticker"].to_list()
    extra = [t for t in tickers if t not in configured][:2]
    lines = []
    held = download_intraday(defs, instance, market_data, warehouse, [extra[0]], "15m", FIRST, LAST, lines.append)
    assert held.select("ticker", "interval", "bars").rows() == [(extra[0], "15m", 3 * 26)]
    assert "[2/2] intraday bars 2024-06-26 .. 2024-06-28 from simulated: 6 symbols x 5m, 15m" in lines[0]
    download_intraday(defs, instance, market_data, warehouse, [extra[1]], "1h", FIRST, LAST, lines.append)
    bars = warehouse.read("intraday_bars").group_by("ticker", "interval").len()
    per = {(t, i): n for t, i, n in bars.rows()}
    assert per[(extra[0], "15m")] == 78 and per[(extra[1], "1h")] == 21 and per[(configured[0], "5m")] == 3 * 78
    assert per[(extra[0], "1h")] == 21  # the union: every held symbol gets the new interval too
    with pytest.raises(DownloadError, match="unknown symbols"):
        download_intraday(defs, instance, market_data, warehouse, ["NOPE"], "5m", FIRST, LAST, lines.append)
    assert warehouse.read("intraday_bars").height == bars["len"].sum()  # the failed run wrote nothing


def test_limits_and_intervals_are_named_before_any_request():
    yahoo = YFinanceIntraday(ticker_factory=lambda s: pytest.fail("no request"), today=lambda: date(2024, 7, 12))
    with pytest.raises(DownloadError, match="Yahoo serves 5m bars only for the last 60 days"):
        preflight(yahoo, ["AAPL"], "5m", date(2024, 1, 2), date(2024, 7, 12))
    preflight(yahoo, ["AAPL"], "1h", date(2024, 1, 2), date(2024, 7, 12))
    with pytest.raises(DownloadError, match="only for the last 60 days .*; the intraday_bars partitions also keep 5m bars"
                                            " of SPY, AAPL"):
        check_plan(yahoo, ["AAPL"], "1h", (["SPY", "AAPL"], ["5m", "1h"]), date(2024, 1, 2), date(2024, 7, 12))
    result = CliRunner().invoke(main, ["download", "--interval", "2m"])
    assert result.exit_code == 2 and "'2m': use 1d or one of 1m, 5m, 15m, 1h" in result.output

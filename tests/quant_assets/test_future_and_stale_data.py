"""Issue 15 items 5 and 6: a future-dated row never changes membership for earlier days, and
the `no_future_dates` check fails when a provider hands over rows after the partition; a stale
file (ending early while listed in universe.csv) or a header-only file is warned about and
counted (`stale_tickers`), never silently treated as a delisting."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import polars as pl
from dagster import materialize

from quant_assets import market
from quant_lib.data.universe import universe_membership
from quant_resources.providers.files import FilesProvider

DAY = date(2024, 6, 28)
TICKERS = ["SPY", *[f"T{i:02d}" for i in range(13)]]


def _write(folder: Path, ticker: str, first: date, last: date, extra_dates: list[date] = ()) -> None:
    days = pl.date_range(first, last, eager=True)
    days = pl.concat([days.filter(days.dt.weekday() <= 5), pl.Series(list(extra_dates), dtype=pl.Date)])
    close = [30.0 + 0.1 * i for i in range(len(days))]
    pl.DataFrame({"date": days, "open": close, "high": [c + 1 for c in close], "low": [c - 1 for c in close],
                  "close": close, "volume": [1e5] * len(days)}).write_csv(folder / f"{ticker}.csv")


def _market(folder: Path, future: date | None = None) -> None:
    for k, ticker in enumerate(TICKERS):
        _write(folder, ticker, date(2024, 6, 3), DAY, [future] if future and k == 5 else [])


def test_a_future_dated_row_does_not_delist_everyone(tmp_path):
    _market(tmp_path, future=date(2027, 1, 4))
    provider = FilesProvider(tmp_path, today=date(2026, 11, 29))
    members = universe_membership(provider.universe(), [DAY])
    assert sorted(members["ticker"].to_list()) == TICKERS
    assert provider.prices(date(2024, 6, 24), DAY).filter(pl.col("date") > DAY).is_empty()


def test_no_future_dates_fails_when_rows_after_the_partition_are_handed_over(
    tmp_path, instance, sim_resources, warehouse_path, monkeypatch
):
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import Warehouse

    _market(tmp_path, future=date(2024, 7, 1))  # after the partition, before today
    unwindowed = FilesProvider.prices
    monkeypatch.setattr(FilesProvider, "prices", lambda self, start, end, tickers=None: unwindowed(
        self, start, date(2024, 7, 31), tickers))  # a provider that hands over more than asked
    resources = dict(sim_resources, market_data=MarketDataResource(provider="files", data_dir=str(tmp_path)))
    result = materialize([market.universe, market.prices], resources=resources, instance=instance,
                         partition_key=DAY.isoformat(), raise_on_error=False)
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "no_future_dates")
    assert not check.passed and check.metadata["future_rows"].value == 1
    assert not Warehouse(warehouse_path).has_table("prices")


def test_stale_and_header_only_files_are_warned_and_counted(tmp_path, instance, sim_resources):
    from quant_resources.market_data import MarketDataResource

    _market(tmp_path)
    _write(tmp_path, "OLD", date(2024, 6, 3), date(2024, 6, 14))
    (tmp_path / "EMPTY.csv").write_text("date,open,high,low,close,volume\n")
    pl.DataFrame({"ticker": [*TICKERS, "OLD", "EMPTY"]}).write_csv(tmp_path / "universe.csv")
    provider = FilesProvider(tmp_path)
    stale = provider.stale_tickers(DAY)
    assert stale.rows() == [("EMPTY", None), ("OLD", date(2024, 6, 14))]
    assert "EMPTY" not in provider.universe()["ticker"].to_list()

    resources = dict(sim_resources, market_data=MarketDataResource(provider="files", data_dir=str(tmp_path)))
    result = materialize([market.universe], resources=resources, instance=instance, partition_key=DAY.isoformat())
    event = result.get_asset_materialization_events()[0]
    assert event.materialization.metadata["stale_tickers"].value == 2
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("OLD (last 2024-06-14)" in w and "EMPTY (last no rows)" in w for w in warnings), warnings

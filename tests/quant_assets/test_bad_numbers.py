"""Issue 15 items 4 and 7: one bad-number policy. Through the `files` provider, every bad cell
(`N/A`, `nan`, `inf`, `1e309`, empty, absurd prices and volumes, a broken adj_close) drops its
row with a reason counted in the validation report; no invalid row reaches the warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import materialize

from quant_assets import market
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_lib.data.calendar import trading_days
from quant_lib.data.cleaning import BadNumberPolicy, clean_ohlcv
from quant_resources.warehouse import Warehouse
from tests.quant_assets.files_market import weekdays, write_price_files

FIRST, LAST = date(2024, 6, 3), date(2024, 6, 28)
GOOD = ["SPY", "GD1", "GD2", "GD3", "GD4"]
# ticker -> (column, bad cell, reason it is dropped under)
BAD_CELLS = {
    "BNA": ("close", "N/A", "missing_ohlc"),
    "BNN": ("close", "nan", "missing_ohlc"),
    "BIN": ("high", "inf", "missing_ohlc"),
    "BOV": ("open", "1e309", "missing_ohlc"),
    "BEM": ("low", "", "missing_ohlc"),
    "BHI": ("high", "1e308", "price_out_of_range"),
    "BLO": ("low", "1e-9", "price_out_of_range"),
    "BVI": ("volume", "inf", "non_finite"),
    "BVH": ("volume", "1e308", "volume_out_of_range"),
    "BAD": ("adj_close", "1e-300", "price_out_of_range"),
    "BAR": ("adj_close", "0.0001", "adj_close_ratio"),
    "BAI": ("adj_close", "inf", "non_finite"),
}

TICKERS = [*GOOD, *BAD_CELLS]


def _write_market(folder: Path) -> None:
    days = weekdays(FIRST, LAST)  # one bad day per ticker, a different day each
    cells = {t: (column, days[k], text) for k, (t, (column, text, _)) in enumerate(BAD_CELLS.items())}
    write_price_files(folder, TICKERS, days, cells)


def test_every_bad_number_is_dropped_with_a_counted_reason(tmp_path, instance, warehouse_path, sim_resources):
    from quant_resources.market_data import MarketDataResource

    data_dir = tmp_path / "files"
    data_dir.mkdir()
    _write_market(data_dir)
    resources = dict(sim_resources, market_data=MarketDataResource(provider="files", data_dir=str(data_dir)))
    tags = {RANGE_START_TAG: FIRST.isoformat(), RANGE_END_TAG: LAST.isoformat()}
    result = materialize([market.universe, market.prices], resources=resources, instance=instance, tags=tags,
                         raise_on_error=False)
    assert result.success, [f.event_specific_data.error.message for f in result.get_step_failure_events()]
    meta = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["prices"])
    dropped = meta.materialization.metadata["dropped_by_reason"].data
    expected: dict[str, int] = {}
    for _, _, reason in BAD_CELLS.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert {k: v for k, v in dropped.items() if v} == expected
    stored = Warehouse(warehouse_path).read("prices")
    sessions = len(trading_days(FIRST, LAST))  # 19: Juneteenth's rows are no session, counted apart
    assert stored.height == len(TICKERS) * sessions - len(BAD_CELLS)
    assert meta.materialization.metadata["non_session_rows_dropped"].value == len(TICKERS) * (20 - sessions)
    numeric = ["open", "high", "low", "close", "adj_close"]
    assert stored.select(pl.all_horizontal(pl.col(c).is_between(1e-6, 1e7) for c in numeric).all()).item()
    assert stored.select((pl.col("volume").is_finite() & (pl.col("volume") <= 1e13)).all()).item()


def test_policy_bounds_are_configurable():
    raw = pl.DataFrame({
        "date": [date(2024, 1, 2), date(2024, 1, 3)], "ticker": ["A", "A"], "open": [5.0, 5e4],
        "high": [6.0, 6e4], "low": [4.0, 4e4], "close": [5.0, 5e4], "adj_close": [5.0, 5e4], "volume": [1.0, 1.0],
    })
    assert clean_ohlcv(raw)[1].rows_out == 2  # within the default (1e-6, 1e7)
    out, report = clean_ohlcv(raw, policy=BadNumberPolicy(max_price=1e4))
    assert out.height == 1 and report.dropped_by_reason["price_out_of_range"] == 1
    with pytest.raises(ValueError, match="min_price"):
        BadNumberPolicy(min_price=10.0, max_price=1.0)


def test_a_column_that_is_all_text_fails_loudly(tmp_path):
    from quant_resources.providers import ProviderError
    from quant_resources.providers.files import FilesProvider

    (tmp_path / "SPY.csv").write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n")
    (tmp_path / "TXT.csv").write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,abc,10\n2024-01-03,1,2,0.5,def,10\n")
    with pytest.raises(ProviderError, match=r"TXT\.csv: column 'close' has 2 unparseable.*'abc'"):
        FilesProvider(tmp_path).prices(date(2024, 1, 1), date(2024, 1, 31))

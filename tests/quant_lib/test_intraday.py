"""Simulated intraday bars: exact against the daily bar, deterministic, U-shaped, on the session grid."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.intraday import (
    INTRADAY_COLUMNS,
    aggregate_to_daily,
    bad_intraday_rows,
    bar_grid,
    intraday_daily_mismatches,
    simulate_intraday,
)
from quant_lib.data.simulate import SimulationConfig, simulate_market


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    market = simulate_market(SimulationConfig(n_tickers=10, seed=3, n_crypto=1), end=date(2024, 12, 31))
    return market.prices.filter(pl.col("date") >= date(2024, 11, 1))


@pytest.fixture(scope="module")
def bars(daily: pl.DataFrame) -> pl.DataFrame:
    return simulate_intraday(daily, "5m", seed=3, calendars={"BTC-USD": "24/7"})


def test_bars_aggregate_exactly_to_the_daily_bar(bars: pl.DataFrame, daily: pl.DataFrame) -> None:
    assert bars.schema == pl.Schema(INTRADAY_COLUMNS)
    assert intraday_daily_mismatches(bars, daily).is_empty()
    aggregated = aggregate_to_daily(bars).join(daily, on=["date", "ticker"], suffix="_daily")
    assert aggregated.height == daily.height
    for field in ("open", "high", "low", "close", "volume"):
        assert (aggregated[field] == aggregated[f"{field}_daily"]).all(), field
    assert bad_intraday_rows(bars).is_empty()


def test_78_five_minute_bars_a_regular_session_fewer_on_half_days_288_for_crypto(bars: pl.DataFrame) -> None:
    counts = bars.group_by("date", "ticker").agg(n=pl.len(), first=pl.col("timestamp").min())
    equity = counts.filter(pl.col("ticker") != "BTC-USD")
    half_days = [date(2024, 11, 29), date(2024, 12, 24)]  # 13:00 closes
    assert set(equity.filter(~pl.col("date").is_in(half_days))["n"]) == {78}
    assert set(equity.filter(pl.col("date").is_in(half_days))["n"]) == {42}
    assert set(counts.filter(pl.col("ticker") == "BTC-USD")["n"]) == {288}
    first = equity.filter(pl.col("date") == date(2024, 12, 2))["first"][0]
    assert str(first) == "2024-12-02 14:30:00+00:00"  # 09:30 EST
    assert bars.filter((pl.col("ticker") == "BTC-USD") & (pl.col("date") == date(2024, 11, 2))).height == 288  # a Saturday


def test_volume_is_u_shaped_and_volatility_follows_the_days(bars: pl.DataFrame) -> None:
    equity = bars.filter(pl.col("ticker") != "BTC-USD").with_columns(
        k=pl.int_range(pl.len()).over("date", "ticker"), n=pl.len().over("date", "ticker")
    ).filter(pl.col("n") == 78)
    profile = equity.group_by("k").agg(pl.col("volume").mean()).sort("k")["volume"].to_numpy()
    assert profile[:6].mean() > 1.8 * profile[33:45].mean() < profile[-6:].mean()
    per_day = equity.with_columns(r=(pl.col("close") / pl.col("open")).log()).group_by("date", "ticker").agg(
        intraday_vol=pl.col("r").std(), range=(pl.col("high").max() / pl.col("low").min()).log()
    )
    assert per_day.select(pl.corr("intraday_vol", "range", method="spearman")).item() > 0.7


def test_same_seed_same_bars_whatever_else_is_simulated(bars: pl.DataFrame, daily: pl.DataFrame) -> None:
    alone = simulate_intraday(daily.filter((pl.col("ticker") == "AAA") & (pl.col("date") == date(2024, 12, 3))), "5m", seed=3)
    assert alone.equals(bars.filter((pl.col("ticker") == "AAA") & (pl.col("date") == date(2024, 12, 3))))
    other = simulate_intraday(daily.filter(pl.col("ticker") == "AAA"), "5m", seed=4)
    assert not other["close"].equals(bars.filter(pl.col("ticker") == "AAA")["close"])


@pytest.mark.parametrize(("interval", "regular", "half"), [("1m", 390, 210), ("15m", 26, 14), ("1h", 7, 4)])
def test_other_intervals_follow_the_grid(interval: str, regular: int, half: int) -> None:
    days = np.array(["2024-11-27", "2024-11-29"], dtype="datetime64[D]")
    day_pos, start, count = bar_grid(days, interval)
    assert np.bincount(day_pos).tolist() == [regular, half]
    assert str(start[0]) == "2024-11-27T14:30:00.000000000"


def test_unsupported_interval_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported interval '2m'"):
        bar_grid(np.array(["2024-11-27"], dtype="datetime64[D]"), "2m")

"""compute_factor_values: layout, universe filtering, dropped factors, no look-ahead."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_lib.data.pit import fundamentals_snapshot
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.data.universe import universe_membership
from quant_lib.factors import (
    EXTRA_COLUMNS,
    FACTOR_NAMES,
    FACTORS,
    REQUIRED_LOOKBACK_DAYS,
    compute_factor_values,
)

CONFIG = SimulationConfig(n_tickers=30, seed=5)
END = date(2009, 12, 31)
CUT = date(2008, 6, 30)
FUNDAMENTAL_FACTORS = {"qmj", "pead", "accruals", "revisions", "sentiment", "upside"}


def _snapshot(market) -> pl.DataFrame:
    return fundamentals_snapshot(market.fundamentals, market.prices["date"].unique().sort()).frame


@pytest.fixture(scope="module")
def market():
    return simulate_market(CONFIG, end=END)


@pytest.fixture(scope="module")
def snapshot(market) -> pl.DataFrame:
    return _snapshot(market)


@pytest.fixture(scope="module")
def full(market, snapshot):
    return compute_factor_values(market.prices, snapshot, market.universe)


def test_registry_specs_are_complete() -> None:
    assert set(FACTOR_NAMES) == {"vsm", "bab", "qmj", "pead", "accruals", "ivol", "revisions", "sentiment", "upside"}
    for name, spec in FACTORS.items():
        assert spec.name == name
        assert spec.sign in (-1, 1)
        assert spec.reference and spec.function.__doc__
        assert spec.lookback_days >= 1 and spec.lookback_days <= REQUIRED_LOOKBACK_DAYS
    assert {n for n, s in FACTORS.items() if s.sign == -1} == {"bab", "accruals", "ivol"}
    assert REQUIRED_LOOKBACK_DAYS == 253


def test_layout_rows_and_universe(full, market) -> None:
    values = full.values
    assert full.dropped == {}
    assert values.columns == ["date", "ticker", "sector", *FACTOR_NAMES, *EXTRA_COLUMNS]
    assert values.schema["date"] == pl.Date and values.schema["ticker"] == pl.String
    assert all(values.schema[c] == pl.Float64 for c in (*FACTOR_NAMES, *EXTRA_COLUMNS))
    assert values.select(pl.struct("date", "ticker").is_duplicated().any()).item() is False
    keys = values.select("date", "ticker")
    assert keys.equals(keys.sort("date", "ticker"))
    assert "SPY" not in values["ticker"].to_list()
    assert set(values.get_column("date").unique()) == set(
        market.prices.filter(pl.col("ticker") == "SPY").get_column("date")
    )
    # active members only: listed_date <= date < delisted_date
    checked = values.join(market.universe, on="ticker").filter(
        (pl.col("date") < pl.col("listed_date"))
        | (pl.col("delisted_date").is_not_null() & (pl.col("date") >= pl.col("delisted_date")))
    )
    assert checked.height == 0
    sectors = values.select("ticker", "sector").unique().join(market.universe, on="ticker")
    assert (sectors["sector"] == sectors["sector_right"]).all()
    last = values.filter(pl.col("date") == END)
    for name in FACTOR_NAMES:
        assert last[name].null_count() < last.height, name


def test_factor_columns_equal_the_single_factor_functions(full, market, snapshot) -> None:
    from quant_lib.factors import betting_against_beta, post_earnings_drift, volatility_scaled_momentum

    vsm = volatility_scaled_momentum(market.prices)
    bab = betting_against_beta(market.prices, "SPY")
    pead = post_earnings_drift(snapshot, market.prices)
    joined = (
        full.values.select("date", "ticker", "vsm", "bab", "pead")
        .join(vsm, on=["date", "ticker"], suffix="_alone")
        .join(bab.select("date", "ticker", pl.col("bab").alias("bab_alone")), on=["date", "ticker"])
        .join(pead.select("date", "ticker", pl.col("pead").alias("pead_alone")), on=["date", "ticker"])
    )
    assert joined.height == full.values.height
    for name in ("vsm", "bab", "pead"):
        assert joined[name].equals(joined[f"{name}_alone"], check_names=False), name


def test_per_date_membership_gives_the_same_values(full, market, snapshot) -> None:
    membership = universe_membership(market.universe, market.prices["date"].unique().sort())
    via_membership = compute_factor_values(market.prices, snapshot, membership)
    # same rows and values; a cross-sectional sum may add in another order (last-bit differences)
    assert_frame_equal(via_membership.values, full.values, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    flagged = membership.with_columns(is_active=pl.col("ticker") != "AAB")
    subset = compute_factor_values(market.prices, snapshot, flagged)
    assert "AAB" not in subset.values["ticker"].to_list()
    assert subset.values.height == full.values.filter(pl.col("ticker") != "AAB").height


def test_missing_fundamentals_drop_factors_with_reasons(market, snapshot) -> None:
    without = compute_factor_values(market.prices, None, market.universe)
    assert set(without.dropped) == FUNDAMENTAL_FACTORS
    assert all("fundamentals" in reason for reason in without.dropped.values())
    assert without.values.columns[:3] == ["date", "ticker", "sector"]
    for name in FUNDAMENTAL_FACTORS:
        assert without.values[name].null_count() == without.values.height
    assert without.values["vsm"].null_count() < without.values.height

    all_null = snapshot.select("date", "ticker", pl.lit(None, dtype=pl.Float64).alias("revenue"))
    blank = compute_factor_values(market.prices, all_null, market.universe)
    assert set(blank.dropped) == FUNDAMENTAL_FACTORS
    assert "entirely null" in blank.dropped["accruals"]

    only_sentiment = snapshot.select("date", "ticker", "news_sentiment")
    partial = compute_factor_values(market.prices, only_sentiment, market.universe)
    assert set(partial.dropped) == FUNDAMENTAL_FACTORS - {"sentiment"}
    assert partial.values["sentiment"].null_count() < partial.values.height


def test_missing_benchmark_drops_beta_factors(market, snapshot) -> None:
    out = compute_factor_values(market.prices, snapshot, market.universe, benchmark_ticker="QQQ")
    assert set(out.dropped) == {"bab", "ivol"}
    assert "QQQ" in out.dropped["bab"]
    assert out.values["beta"].null_count() == out.values.height
    assert out.values["upside"].null_count() < out.values.height


def test_factor_subset_and_unknown_names(market, snapshot) -> None:
    out = compute_factor_values(market.prices, snapshot, market.universe, factors=["vsm", "accruals"])
    assert out.values["qmj"].null_count() == out.values.height
    assert out.values["accruals"].null_count() < out.values.height
    with pytest.raises(ValueError, match="unknown factors"):
        compute_factor_values(market.prices, snapshot, market.universe, factors=["momentum"])
    with pytest.raises(ValueError, match="adj_close"):
        compute_factor_values(market.prices.drop("adj_close"), snapshot, market.universe)


def test_history_cut_at_d_gives_identical_values_at_d(full) -> None:
    cut_market = simulate_market(CONFIG, end=CUT)
    cut = compute_factor_values(cut_market.prices, _snapshot(cut_market), cut_market.universe)
    at_cut_full = full.values.filter(pl.col("date") == CUT)
    at_cut = cut.values.filter(pl.col("date") == CUT)
    assert at_cut.height > 20
    assert at_cut.equals(at_cut_full)


def test_required_lookback_is_enough_history(full, market, snapshot) -> None:
    dates = market.prices.filter(pl.col("ticker") == "SPY")["date"]
    cut_idx = dates.to_list().index(CUT)
    first = dates[cut_idx - REQUIRED_LOOKBACK_DAYS + 1]
    window = lambda f: f.filter(pl.col("date").is_between(first, CUT))  # noqa: E731
    short = compute_factor_values(window(market.prices), window(snapshot), market.universe)
    a = short.values.filter(pl.col("date") == CUT)
    b = full.values.filter(pl.col("date") == CUT)
    assert a.select("ticker").equals(b.select("ticker"))
    for name in (*FACTOR_NAMES, "beta"):
        diff = (a[name] - b[name]).abs().max()
        assert a[name].null_count() == b[name].null_count(), name
        assert diff is None or diff < 1e-9, (name, diff)


def test_without_universe_every_non_benchmark_ticker_is_active(full, market, snapshot) -> None:
    out = compute_factor_values(market.prices, snapshot, None)
    assert out.values["sector"].unique().to_list() == ["Unknown"]
    assert "SPY" not in out.values["ticker"].to_list()
    assert out.values.height == market.prices.filter(pl.col("ticker") != "SPY").height
    assert out.values.height > full.values.height  # the master also drops each delisting day


def test_empty_inputs_give_the_empty_layout() -> None:
    from quant_lib.data.schemas import FUNDAMENTAL_SNAPSHOT_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS, empty_frame

    out = compute_factor_values(
        empty_frame(PRICE_COLUMNS), empty_frame(FUNDAMENTAL_SNAPSHOT_COLUMNS), empty_frame(UNIVERSE_COLUMNS)
    )
    assert out.values.height == 0
    assert out.values.columns == ["date", "ticker", "sector", *FACTOR_NAMES, *EXTRA_COLUMNS]
    assert set(out.dropped) == set(FACTOR_NAMES) - {"vsm"}

"""The compiled per-ticker pass against the polars expressions it replaces (the reference form)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.features.technical import (
    TECHNICAL_FEATURE_NAMES,
    compute_technical_features,
    compute_technical_features_reference,
)

# polars' rolling_skew / rolling_kurtosis (the reference) update moments online; the compiled
# pass sums them over each window: the two agree to rounding, every other feature bit for bit.
ROUNDING_ONLY = ("skew_20", "kurt_20")


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """Three simulated tickers of unequal length (one shorter than the longest window, one a
    single bar), a flat stretch with zero volume (0/0 and x/0 in several formulas)."""
    prices = simulate_market(SimulationConfig(n_tickers=4, seed=11), end=date(2005, 12, 31)).prices.drop("adj_close")
    tickers = prices["ticker"].unique().sort()
    rank = pl.col("date").rank("ordinal").over("ticker")
    flat = (pl.col("ticker") == tickers[0]) & rank.is_between(100, 130)
    prices = prices.with_columns(
        *(pl.when(flat).then(50.0).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")),
        pl.when(flat).then(0.0).otherwise(pl.col("volume")).alias("volume"),
    )
    short = (pl.col("ticker") == tickers[2]) & (rank <= 30)
    single = (pl.col("ticker") == tickers[3]) & (rank == 1)
    return prices.filter((pl.col("ticker") <= tickers[1]) | short | single)


def test_compiled_pass_matches_the_polars_reference(panel: pl.DataFrame) -> None:
    fast, reference = compute_technical_features(panel), compute_technical_features_reference(panel)
    assert fast.select(pl.exclude(TECHNICAL_FEATURE_NAMES)).equals(reference.select(pl.exclude(TECHNICAL_FEATURE_NAMES)))
    for name in TECHNICAL_FEATURE_NAMES:
        got, expected = fast[name].to_numpy(), reference[name].to_numpy()
        assert not np.isinf(got).any(), name
        if name in ROUNDING_ONLY:
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    flat = fast.filter(pl.col("volume") == 0.0)
    assert flat.height > 20 and flat["close_location"].is_nan().all()
    assert all(flat[name].tail(10).is_nan().all() for name in ("stoch_k_14", "bb_position_20", "obv_slope_10", "mfi_14"))


def test_threads_split_the_tickers_without_changing_a_value(panel: pl.DataFrame) -> None:
    assert compute_technical_features(panel, threads=3).equals(compute_technical_features(panel, threads=1))

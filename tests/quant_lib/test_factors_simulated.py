"""Known answers on the simulated market (planted premia and betas) and the diagnostics tables."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.data.pit import fundamentals_snapshot
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.factors import (
    beta_neutral_forward_returns,
    compute_factor_values,
    factor_diagnostics,
    forward_returns,
    process_factors,
    to_markdown,
)

CONFIG = SimulationConfig(n_tickers=80, seed=2)
END = date(2014, 12, 31)
PLANTED = ["z_vsm", "z_bab", "z_qmj", "z_pead", "z_sentiment"]


@pytest.fixture(scope="module")
def market():
    return simulate_market(CONFIG, end=END)


@pytest.fixture(scope="module")
def values(market) -> pl.DataFrame:
    snapshot = fundamentals_snapshot(market.fundamentals, market.prices["date"].unique().sort()).frame
    return compute_factor_values(market.prices, snapshot, market.universe).values


@pytest.fixture(scope="module")
def scores(values) -> pl.DataFrame:
    return process_factors(values)


@pytest.fixture(scope="module")
def diagnostics(market, values, scores) -> dict[str, pl.DataFrame]:
    forward = beta_neutral_forward_returns(market.prices, values.select("date", "ticker", "beta"), "SPY", (5, 21))
    return factor_diagnostics(scores, None, horizons=(5, 21), forward=forward)


def test_planted_premia_have_positive_rank_ic(diagnostics) -> None:
    summary = diagnostics["ic_summary"].filter(pl.col("horizon") == 21)
    by_factor = {r["factor"]: r for r in summary.iter_rows(named=True)}
    for factor in PLANTED:
        row = by_factor[factor]
        assert row["n_dates"] > 2000, factor
        assert row["mean_rank_ic"] > 0.01, (factor, row["mean_rank_ic"])
        assert row["rank_ic_t_stat"] > 3.0, (factor, row["rank_ic_t_stat"])
    spread = diagnostics["quantile_spread"].filter(pl.col("horizon") == 21)
    for factor in PLANTED:
        assert spread.filter(pl.col("factor") == factor)["mean_spread"].item() > 0, factor


def test_estimated_betas_track_the_planted_betas(values, market) -> None:
    mean_beta = values.group_by("ticker").agg(pl.col("beta").mean()).join(market.truth.betas, on="ticker")
    assert mean_beta.height >= 60
    assert mean_beta.select(pl.corr("beta", "beta_right")).item() >= 0.9


def test_processed_simulated_scores_are_standardized(scores) -> None:
    z_cols = [c for c in scores.columns if c.startswith("z_")]
    assert len(z_cols) == 9
    stats = scores.filter(pl.col("date") >= date(2007, 1, 1)).group_by("date").agg(
        *[pl.col(c).mean().alias(f"m_{c}") for c in z_cols], *[pl.col(c).std().alias(f"s_{c}") for c in z_cols]
    )
    for c in z_cols:
        assert stats[f"m_{c}"].abs().max() < 1e-9, c
        assert (stats[f"s_{c}"] - 1.0).abs().max() < 1e-9, c
    sector_means = scores.group_by("date", "sector").agg(pl.col("z_qmj").mean())
    assert sector_means["z_qmj"].drop_nulls().abs().max() < 1e-9


def test_diagnostics_tables(diagnostics, scores) -> None:
    assert set(diagnostics) == {
        "ic_by_date", "ic_summary", "quantile_returns", "quantile_spread", "turnover", "ic_decay",
    }
    q = diagnostics["quantile_returns"]
    assert set(q["quantile"].unique()) == {1, 2, 3, 4, 5}
    sentiment = q.filter((pl.col("factor") == "z_sentiment") & (pl.col("horizon") == 21)).sort("quantile")
    assert sentiment["mean_return"][-1] > sentiment["mean_return"][0]
    turnover = diagnostics["turnover"]
    assert turnover.height == 9
    assert turnover["top_quantile_turnover"].is_between(0.0, 1.0).all()
    slow, fast = (turnover.filter(pl.col("factor") == f)["rank_turnover"].item() for f in ("z_bab", "z_sentiment"))
    assert slow < fast  # a 252-day beta moves slower than a 10-day sentiment EWMA
    decay = diagnostics["ic_decay"]
    assert decay.columns == ["factor", "ic_h5", "ic_h21", "rank_ic_h5", "rank_ic_h21"]
    table = to_markdown(decay)
    lines = table.splitlines()
    assert lines[0] == "| factor | ic_h5 | ic_h21 | rank_ic_h5 | rank_ic_h21 |"
    assert lines[1] == "|---|---|---|---|---|" and len(lines) == 2 + decay.height


def test_ic_on_a_hand_made_panel() -> None:
    days = [date(2021, 1, 4) + timedelta(days=i) for i in range(4)]
    tickers = ["A", "B", "C", "D", "E"]
    growth = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    prices = pl.DataFrame(
        {
            "date": [d for d in days for _ in tickers],
            "ticker": tickers * len(days),
            "adj_close": [100.0 * (1 + g) ** i for i in range(len(days)) for g in growth],
        }
    )
    scores = pl.DataFrame(
        {"date": [d for d in days for _ in tickers], "ticker": tickers * len(days), "z_good": list(growth) * 4,
         "z_bad": list(-growth) * 4}
    )
    out = factor_diagnostics(scores, prices, horizons=(1, 2), quantiles=5)
    summary = out["ic_summary"].sort("factor", "horizon")
    assert summary.filter(pl.col("factor") == "z_good")["mean_rank_ic"].to_list() == pytest.approx([1.0, 1.0])
    assert summary.filter(pl.col("factor") == "z_bad")["mean_rank_ic"].to_list() == pytest.approx([-1.0, -1.0])
    assert summary.filter(pl.col("factor") == "z_bad")["mean_ic"][0] == pytest.approx(-1.0)
    assert summary.filter((pl.col("factor") == "z_good") & (pl.col("horizon") == 1))["n_dates"].item() == 3
    spread = out["quantile_spread"].filter((pl.col("factor") == "z_good") & (pl.col("horizon") == 1))
    assert spread["mean_spread"].item() == pytest.approx(0.04)
    assert out["turnover"].filter(pl.col("factor") == "z_good")["top_quantile_turnover"].item() == 0.0
    fwd = forward_returns(prices, (1,))
    assert fwd.filter((pl.col("ticker") == "C") & (pl.col("date") == days[0]))["fwd_1"].item() == pytest.approx(0.03)
    with pytest.raises(ValueError, match="quantiles"):
        factor_diagnostics(scores, prices, quantiles=1)

"""compute_rankings: regime-weighted composite, ranks, breakdown, no look-ahead."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.pit import fundamentals_snapshot
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.factors import RANKING_COLUMNS, compute_factor_values, compute_rankings, process_factors
from quant_lib.regime import DEFAULT_REGIME_WEIGHTS, DynamicFactorWeights, regime_path

D1, D2 = date(2022, 3, 1), date(2022, 3, 2)


def _scores() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [D1, D1, D1, D2, D2],
            "ticker": ["AAA", "BBB", "CCC", "AAA", "BBB"],
            "sector": ["X"] * 5,
            "z_vsm": [1.0, -1.0, 0.5, 2.0, None],
            "z_qmj": [0.0, 1.0, None, -1.0, None],
            "z_ivol": [0.5, 0.5, 0.5, 0.0, None],
        }
    )


def test_score_is_the_regime_weighted_mean_over_available_factors() -> None:
    weights = {"Bull": {"vsm": 3.0, "qmj": 1.0}, "Bear": {"vsm": 1.0, "qmj": 3.0}, "Unknown": {"vsm": 1.0, "qmj": 1.0}}
    regimes = pl.DataFrame({"date": [D1, D2], "regime": ["Bull", "Bear"]})
    out = compute_rankings(_scores(), regimes, weights, model_name="test_model")
    assert out.columns == list(RANKING_COLUMNS)
    assert out.schema["rank"] == pl.Int32 and out.schema["score"] == pl.Float64
    got = {(r["date"], r["ticker"]): r for r in out.iter_rows(named=True)}
    assert got[(D1, "AAA")]["score"] == pytest.approx(0.75 * 1.0 + 0.25 * 0.0)
    assert got[(D1, "BBB")]["score"] == pytest.approx(0.75 * -1.0 + 0.25 * 1.0)
    assert got[(D1, "CCC")]["score"] == pytest.approx(0.5)  # qmj missing: vsm weight renormalized to 1
    assert got[(D2, "AAA")]["score"] == pytest.approx(0.25 * 2.0 + 0.75 * -1.0)
    assert (D2, "BBB") not in got  # no factor available
    assert [got[(D1, t)]["rank"] for t in ("AAA", "BBB", "CCC")] == [1, 3, 2]
    assert got[(D1, "AAA")]["regime"] == "Bull" and got[(D2, "AAA")]["regime"] == "Bear"
    assert got[(D1, "AAA")]["model_name"] == "test_model"
    assert got[(D1, "AAA")]["vsm"] == 1.0 and got[(D1, "AAA")]["bab"] is None
    meta = json.loads(got[(D1, "CCC")]["metadata_json"])
    assert meta == {"regime": "Bull", "weights": {"vsm": 1.0, "qmj": 0.0, "ivol": 0.0}}
    row = got[(D1, "BBB")]
    meta = json.loads(row["metadata_json"])
    assert meta["weights"] == {"vsm": 0.75, "qmj": 0.25, "ivol": 0.0}
    assert sum(w * (row[f] or 0.0) for f, w in meta["weights"].items()) == pytest.approx(row["score"])
    assert row["ivol"] == 0.5 and row["accruals"] is None


def test_missing_or_unlabelled_regime_uses_unknown_weights() -> None:
    weights = {"Bull": {"vsm": 1.0}, "Unknown": {"qmj": 1.0}}
    regimes = pl.DataFrame({"date": [D1], "regime": ["Transition"]})
    out = compute_rankings(_scores(), regimes, weights)
    day1 = out.filter(pl.col("date") == D1).sort("ticker")
    assert day1["ticker"].to_list() == ["AAA", "BBB"]  # CCC has no qmj
    assert day1["score"].to_list() == [0.0, 1.0]
    assert day1["regime"].to_list() == ["Transition"] * 2
    day2 = out.filter(pl.col("date") == D2)
    assert day2["regime"].to_list() == ["Unknown"]
    assert compute_rankings(_scores(), None, weights)["regime"].unique().to_list() == ["Unknown"]


def test_default_weights_and_flat_weights() -> None:
    table = DynamicFactorWeights()
    for regime in ("Bull", "Bear", "Unknown"):
        w = table.for_regime(regime)
        assert sum(w.values()) == pytest.approx(1.0)
        for name, seed_weight in DEFAULT_REGIME_WEIGHTS[regime].items():
            assert w[name] == pytest.approx(seed_weight)
    assert table.for_regime("Bull")["vsm"] == 0.25 and table.for_regime("Bear")["qmj"] == 0.30
    flat = compute_rankings(_scores(), None, {"vsm": 1.0})
    assert flat.filter(pl.col("date") == D1).sort("ticker")["score"].to_list() == [1.0, -1.0, 0.5]


def test_ties_are_broken_by_ticker_and_ranks_are_dense_per_date() -> None:
    scores = pl.DataFrame({"date": [D1] * 3, "ticker": ["CCC", "AAA", "BBB"], "z_vsm": [1.0, 1.0, 2.0]})
    out = compute_rankings(scores, None, {"vsm": 1.0})
    assert out["ticker"].to_list() == ["BBB", "AAA", "CCC"]
    assert out["rank"].to_list() == [1, 2, 3]


def test_output_is_in_date_then_rank_order_for_shuffled_input() -> None:
    rng = np.random.default_rng(3)
    days = [date(2022, 3, d) for d in (1, 2, 3, 4)]
    tickers = [f"T{i:02d}" for i in range(9)]
    scores = pl.DataFrame(
        {
            "date": [d for d in days for _ in tickers],
            "ticker": tickers * len(days),
            "z_vsm": rng.normal(size=len(days) * len(tickers)),
        }
    ).sample(fraction=1.0, shuffle=True, seed=5)
    out = compute_rankings(scores, None, {"vsm": 1.0})
    assert out.height == len(days) * len(tickers)
    assert out.select("date", "rank").rows() == [(d, r) for d in days for r in range(1, len(tickers) + 1)]
    best = scores.sort("z_vsm", descending=True).group_by("date", maintain_order=True).first()
    firsts = dict(out.filter(pl.col("rank") == 1).select("date", "ticker").rows())
    assert firsts == dict(best.select("date", "ticker").rows())


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="z_<factor>"):
        compute_rankings(_scores().select("date", "ticker"), None)
    dup = pl.DataFrame({"date": [D1, D1], "regime": ["Bull", "Bear"]})
    with pytest.raises(ValueError, match="several rows per date"):
        compute_rankings(_scores(), dup)
    with pytest.raises(ValueError, match="Unknown"):
        DynamicFactorWeights({"Bull": {"vsm": 1.0}})
    with pytest.raises(ValueError, match=">= 0"):
        DynamicFactorWeights({"Unknown": {"vsm": -1.0}})
    with pytest.raises(ValueError, match="positive total"):
        DynamicFactorWeights({"Unknown": {"vsm": 0.0}})


CONFIG = SimulationConfig(n_tickers=30, seed=5)


def _pipeline(end: date) -> pl.DataFrame:
    market = simulate_market(CONFIG, end=end)
    snapshot = fundamentals_snapshot(market.fundamentals, market.prices["date"].unique().sort()).frame
    values = compute_factor_values(market.prices, snapshot, market.universe).values
    regimes = regime_path(market.prices.filter(pl.col("ticker") == "SPY"), lookback=504)
    return compute_rankings(process_factors(values), regimes, DynamicFactorWeights())


def test_rankings_cut_at_d_equal_the_full_history_at_d() -> None:
    cut = date(2008, 6, 30)
    full = _pipeline(date(2009, 12, 31))
    truncated = _pipeline(cut)
    at_full = full.filter(pl.col("date") == cut)
    at_cut = truncated.filter(pl.col("date") == cut)
    assert at_cut.height > 20 and at_cut["regime"][0] in ("Bull", "Bear")
    differing = [c for c in at_full.columns if not at_cut[c].equals(at_full[c])]
    assert differing == []
    assert _pipeline(cut).equals(truncated)  # bit-for-bit reproducible run to run
    assert sorted(at_full["rank"].to_list()) == list(range(1, at_full.height + 1))

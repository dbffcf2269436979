"""Turnover controls: the smoothed score is a causal truncated EWM, the rebalance schedule trades
on the first session of each period, and the default book on a small market turns over < 50%."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.calendar import trading_days
from quant_lib.factors.smoothing import smooth_scores, smoothing_window
from quant_lib.portfolio.schedule import rebalance_day_flags

DAYS = trading_days(date(2024, 6, 3), date(2024, 7, 12))


def _rankings(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(d, t, float(rng.normal())) for d in DAYS for t in ("AAA", "BBB", "CCC", "DDD")]
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "ticker": pl.String, "score": pl.Float64}, orient="row")
    frame = frame.filter(~((pl.col("ticker") == "DDD") & (pl.col("date") < DAYS[10])))  # DDD listed later
    return frame.with_columns(pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"))


def test_smoothed_score_is_the_truncated_ewm_known_answer():
    half_life = 2.0
    ranked = _rankings()
    out = smooth_scores(ranked, half_life)
    assert smoothing_window(half_life) == 10 and out.height == ranked.height
    decay = 0.5 ** (1 / half_life)
    raw = ranked.filter(pl.col("ticker") == "AAA")["score"].to_numpy()
    weights = decay ** np.arange(10)
    expected = raw[-10:][::-1] @ weights / weights.sum()
    assert out.filter(pl.col("ticker") == "AAA")["score"][-1] == pytest.approx(expected, rel=1e-12)
    ddd = out.filter(pl.col("ticker") == "DDD")
    assert ddd["score"][0] == pytest.approx(ddd["raw_score"][0]), "a new listing starts at its raw score"
    second = (decay * ddd["raw_score"][0] + ddd["raw_score"][1]) / (1 + decay)
    assert ddd["score"][1] == pytest.approx(second)
    latest = out.filter(pl.col("date") == DAYS[-1]).sort("score", descending=True)
    assert latest["rank"].to_list() == [1, 2, 3, 4]
    assert smooth_scores(ranked, 0.0)["score"].equals(ranked["score"])


def test_smoothed_score_is_causal_and_truncation_invariant():
    ranked, half_life = _rankings(), 1.5
    window = smoothing_window(half_life)
    full = smooth_scores(ranked, half_life)
    cut = DAYS[20]
    past_only = smooth_scores(ranked.filter(pl.col("date") <= cut), half_life)
    assert past_only.filter(pl.col("date") == cut).equals(full.filter(pl.col("date") == cut)), "causal"
    truncated = smooth_scores(ranked.filter(pl.col("date") >= DAYS[20 - window + 1]), half_life)
    assert truncated.filter(pl.col("date") >= cut).equals(full.filter(pl.col("date") >= cut)), "truncation-invariant"
    changed = ranked.with_columns(pl.when(pl.col("date") == DAYS[20 - window]).then(99.0).otherwise(pl.col("score")).alias("score"))
    assert smooth_scores(changed, half_life).filter(pl.col("date") >= cut).equals(full.filter(pl.col("date") >= cut))
    with pytest.raises(ValueError, match="half-life"):
        smooth_scores(ranked, -1.0)


def test_rebalance_days_are_the_first_session_of_each_period():
    days = pl.Series("date", trading_days(date(2024, 6, 24), date(2024, 7, 12)))
    weekly = days.filter(rebalance_day_flags(days, "weekly")).to_list()
    monthly = days.filter(rebalance_day_flags(days, "monthly")).to_list()
    assert weekly == [date(2024, 6, 24), date(2024, 7, 1), date(2024, 7, 8)]
    assert monthly == [date(2024, 7, 1)]
    assert rebalance_day_flags(days, "daily").all()
    with pytest.raises(ValueError, match="rebalance_frequency"):
        rebalance_day_flags(days, "hourly")

"""Data-quality checks of the `alpha` group (seed 000 §7.3.2 thresholds)."""

from __future__ import annotations

import polars as pl

from quant_lib.data.quality import CheckOutcome


def ranking_coverage(rankings: pl.DataFrame, membership: pl.DataFrame, threshold: float = 0.80) -> CheckOutcome:
    """Share of active equities (benchmark excluded) ranked on each date; fails below `threshold`."""
    members = membership.filter(~pl.col("is_benchmark")).group_by("date").agg(pl.len().alias("active"))
    ranked = rankings.group_by("date").agg(pl.col("ticker").n_unique().alias("ranked"))
    per_day = (
        members.join(ranked, on="date", how="left")
        .with_columns(pl.col("ranked").fill_null(0))
        .with_columns((pl.col("ranked") / pl.col("active")).alias("coverage"))
        .sort("coverage")
    )
    worst = float(per_day["coverage"][0]) if per_day.height else 0.0
    low = per_day.filter(pl.col("coverage") < threshold)
    return CheckOutcome(
        "ranking_coverage",
        per_day.height > 0 and low.is_empty(),
        f"lowest daily ranking coverage {worst:.1%} of the active universe (threshold {threshold:.0%})",
        {"min_coverage": worst, "days_below": low.height, "worst_days": str(low.head(5).to_dicts())},
    )


def regime_confidence(regime: pl.DataFrame, threshold: float = 0.60) -> CheckOutcome:
    """Warns when the HMM's confidence is below `threshold` or the regime is Unknown on any date."""
    weak = regime.filter((pl.col("confidence").fill_null(0.0) < threshold) | (pl.col("regime") == "Unknown"))
    latest = regime.sort("date").tail(1)
    text = (
        f"latest {latest['regime'][0]} with confidence {latest['confidence'][0] or 0:.1%}; "
        f"{weak.height} of {regime.height} days below {threshold:.0%}"
        if latest.height
        else "no regime rows"
    )
    return CheckOutcome(
        "regime_confidence",
        weak.is_empty() and regime.height > 0,
        text,
        {"weak_days": weak.height, "examples": str(weak.select("date", "regime", "confidence", "reason").head(5).to_dicts())},
        blocking=False,
    )


def zscore_sanity(scores: pl.DataFrame, tolerance: float = 1e-6) -> CheckOutcome:
    """Every z-score is finite (or null); per date and factor the mean is ~0 and the std ~1."""
    z_cols = [c for c in scores.columns if c.startswith("z_")]
    if not z_cols:
        return CheckOutcome("zscores_standardized", False, "no z_<factor> columns in factor_scores")
    infinite = scores.select(sum(pl.col(c).is_infinite().sum() for c in z_cols)).item()
    stats = (
        scores.unpivot(index="date", on=z_cols, variable_name="factor", value_name="z")
        .drop_nulls("z")
        .group_by("date", "factor")
        .agg(pl.col("z").mean().alias("mean"), pl.col("z").std().alias("std"), pl.len().alias("n"))
        .filter(pl.col("n") > 2)
    )
    bad = stats.filter(((pl.col("mean").abs() > tolerance) | ((pl.col("std") - 1).abs() > tolerance)))
    ok = infinite == 0 and bad.is_empty()
    return CheckOutcome(
        "zscores_standardized",
        ok,
        f"{infinite} infinite z-scores; {bad.height} (date, factor) groups off mean 0 / std 1 of {stats.height}",
        {"infinite": int(infinite), "bad_groups": bad.height, "examples": str(bad.head(5).to_dicts())},
    )

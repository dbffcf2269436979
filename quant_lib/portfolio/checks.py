"""Checks of the `portfolio` group as plain outcomes (the assets turn them into Dagster asset-check
results). Blocking: weights sum, long only, position and sector caps; warnings: VaR limit and
turnover. Failures name the offending dates and tickers."""

from __future__ import annotations

import polars as pl

from quant_lib.data.quality import CheckOutcome, _rows_markdown

WEIGHT_TOLERANCE = 1e-6
CAP_TOLERANCE = 1e-9


def _dates(frame: pl.DataFrame) -> str:
    return ", ".join(str(d) for d in frame["date"].unique().sort().head(10).to_list())


def _largest(frame: pl.DataFrame, column: str) -> float:
    return float(frame[column].max() or 0.0) if frame.height else 0.0


def _outcome(
    name: str, bad: pl.DataFrame, passed: str, failed: str, count_key: str, *, blocking: bool = True, **details: object
) -> CheckOutcome:
    """Passes when `bad` (the offending rows) is empty; details: the count, `details`, the rows."""
    return CheckOutcome(
        name,
        bad.is_empty(),
        passed if bad.is_empty() else failed,
        {count_key: bad.height, **details, "rows": _rows_markdown(bad)},
        blocking=blocking,
    )


def weights_sum(targets: pl.DataFrame, tolerance: float = WEIGHT_TOLERANCE) -> CheckOutcome:
    """raw_weight sums to 1 +- `tolerance` on every date (the capped allocation before leverage)."""
    sums = targets.group_by("date").agg(pl.col("raw_weight").sum().alias("raw_sum"), pl.len().alias("names")).sort("date")
    bad = sums.filter((pl.col("raw_sum") - 1.0).abs() > tolerance)
    if bad.height and "fallback_reason" in targets.columns:
        reasons = targets.group_by("date").agg(pl.col("fallback_reason").first())
        bad = bad.join(reasons, on="date", how="left")
    return _outcome(
        "weights_sum", bad,
        f"raw weights sum to 1 on all {sums.height} dates",
        f"raw weights do not sum to 1 (+-{tolerance:g}) on {bad.height} of {sums.height} dates: {_dates(bad)}",
        "bad_dates",
    )


def long_only(targets: pl.DataFrame) -> CheckOutcome:
    """No negative (or NaN / null) weight or raw_weight."""
    weight_cols = [c for c in ("weight", "raw_weight") if c in targets.columns]
    bad = targets.filter(
        pl.any_horizontal(*(pl.col(c).is_null() | pl.col(c).is_nan() | (pl.col(c) < 0) for c in weight_cols))
    ).select("date", "ticker", *weight_cols)
    return _outcome(
        "long_only", bad,
        f"all {targets.height} weights are non-negative numbers",
        f"{bad.height} negative or missing weights on {_dates(bad)}",
        "violations",
    )


def max_position(targets: pl.DataFrame, limit: float) -> CheckOutcome:
    """Every final weight <= `limit` (+1e-9)."""
    bad = targets.filter(pl.col("weight") > limit + CAP_TOLERANCE).select("date", "ticker", "weight").sort("weight", descending=True)
    largest = _largest(targets, "weight")
    return _outcome(
        "max_position", bad,
        f"largest position {largest:.2%} (limit {limit:.0%})",
        f"{bad.height} positions above {limit:.0%} on {_dates(bad)}; largest {largest:.2%}",
        "violations", largest=largest,
    )


def sector_caps(targets: pl.DataFrame, limit: float | None, universe: pl.DataFrame | None = None) -> CheckOutcome:
    """Per date and sector the final weights sum to <= `limit` (+1e-9); sectors from the targets'
    `sector` column or `universe` (date, ticker, sector). `limit=None`: caps disabled, passes."""
    if limit is None:
        return CheckOutcome("sector_caps", True, "sector caps disabled")
    frame = targets
    if "sector" not in frame.columns:
        if universe is None:
            raise ValueError("sector_caps needs a `sector` column in targets or a universe frame")
        frame = frame.join(universe.select("date", "ticker", "sector"), on=["date", "ticker"], how="left")
    totals = frame.group_by("date", pl.col("sector").fill_null("Unknown")).agg(
        pl.col("weight").sum().alias("sector_weight"), pl.col("ticker").sort().str.join(",").alias("tickers")
    )
    bad = totals.filter(pl.col("sector_weight") > limit + CAP_TOLERANCE).sort("date", "sector")
    largest = _largest(totals, "sector_weight")
    return _outcome(
        "sector_caps", bad,
        f"largest sector weight {largest:.2%} (cap {limit:.0%})",
        f"{bad.height} (date, sector) totals above {limit:.0%} on {_dates(bad)}",
        "violations", largest=largest,
    )


def var_limit(report: pl.DataFrame, limit: float = 0.03) -> CheckOutcome:
    """Warns when the daily parametric VaR exceeds `limit` of portfolio value on any date."""
    per_date = report.group_by("date").agg(
        pl.col("portfolio_var_pct").first(), pl.col("limit_status").first()
    ).sort("date")
    bad = per_date.filter(pl.col("portfolio_var_pct") > limit)
    worst = _largest(per_date, "portfolio_var_pct")
    return _outcome(
        "var_limit", bad,
        f"highest daily parametric VaR {worst:.2%} of value (limit {limit:.0%})",
        f"VaR above {limit:.0%} on {bad.height} of {per_date.height} dates: {_dates(bad)} (worst {worst:.2%})",
        "breaches", blocking=False, worst_var_pct=worst,
    )


def turnover(turnover_frame: pl.DataFrame, limit: float = 0.50) -> CheckOutcome:
    """Warns when the 21-day one-way turnover (`turnover_21d`) exceeds `limit` on any date."""
    bad = turnover_frame.filter(pl.col("turnover_21d") > limit).sort("date")
    worst = _largest(turnover_frame, "turnover_21d")
    return _outcome(
        "turnover", bad,
        f"highest 21-day turnover {worst:.1%} (limit {limit:.0%})",
        f"21-day turnover above {limit:.0%} on {bad.height} of {turnover_frame.height} dates: {_dates(bad)} "
        f"(worst {worst:.1%})",
        "breaches", blocking=False, worst_turnover=worst,
    )

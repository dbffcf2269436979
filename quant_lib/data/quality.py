"""Data-quality checks of the `market` group, as plain outcomes (the assets turn them into
Dagster asset-check results). Each failing outcome names the offending rows and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_SNAPSHOT_COLUMNS
from quant_lib.data.universe import coverage_by_date, missing_members


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one data-quality check; `blocking` failures stop downstream assets."""

    name: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    blocking: bool = True


def _rows_markdown(frame: pl.DataFrame, limit: int = 10) -> str:
    if frame.is_empty():
        return "(none)"
    head = frame.head(limit)
    header = "| " + " | ".join(head.columns) + " |\n|" + "---|" * head.width + "\n"
    body = "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows())
    more = f"\n\n... and {frame.height - limit} more" if frame.height > limit else ""
    return header + body + more


def price_checks(
    prices: pl.DataFrame,
    membership: pl.DataFrame,
    raw_prices: pl.DataFrame,
    drop_rate: float,
    today: date,
    min_coverage: float = 0.9,
    max_drop_rate: float = 0.10,
) -> list[CheckOutcome]:
    """Blocking checks on cleaned prices: schema, OHLC logic, universe coverage, no future
    dates (in what the provider sent), drop rate. Dates on which no member has a price are
    reported as market holidays rather than coverage failures."""
    return [
        _prices_schema_check(prices),
        _ohlc_logic_check(prices),
        _universe_coverage_check(prices, membership, min_coverage),
        _no_future_dates_check(raw_prices, today),
        CheckOutcome(
            "drop_rate",
            drop_rate <= max_drop_rate,
            f"cleaning dropped {drop_rate:.2%} of rows (limit {max_drop_rate:.0%})",
            {"drop_rate": drop_rate, "limit": max_drop_rate},
        ),
    ]


def _prices_schema_check(prices: pl.DataFrame) -> CheckOutcome:
    """`prices` against the pandera PricesSchema (all failures collected)."""
    import pandera.errors

    from quant_lib.data.pandera_schemas import PricesSchema

    try:
        PricesSchema.validate(prices, lazy=True)
        return CheckOutcome("schema", True, "prices match PricesSchema")
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as err:
        return CheckOutcome("schema", False, f"prices fail PricesSchema: {str(err)[:2000]}")


def _ohlc_logic_check(prices: pl.DataFrame) -> CheckOutcome:
    """low <= min(open, close), high >= max(open, close), every price > 0."""
    bad_ohlc = prices.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.min_horizontal("open", "high", "low", "close") <= 0)
    )
    return CheckOutcome(
        "ohlc_logic",
        bad_ohlc.is_empty(),
        "low <= open, close <= high and all prices > 0"
        if bad_ohlc.is_empty()
        else f"{bad_ohlc.height} rows violate OHLC logic",
        {"violations": bad_ohlc.height, "rows": _rows_markdown(bad_ohlc.select("date", "ticker", "open", "high", "low", "close"))},
    )


def _universe_coverage_check(prices: pl.DataFrame, membership: pl.DataFrame, min_coverage: float) -> CheckOutcome:
    """Share of members priced on each trading day >= `min_coverage` (days no member trades are holidays)."""
    coverage = coverage_by_date(prices, membership)
    trading = coverage.filter(~pl.col("market_closed"))
    holidays = coverage.filter(pl.col("market_closed")).get_column("date").to_list()
    worst = trading.sort("coverage").head(1)
    min_cov = float(worst["coverage"][0]) if worst.height else 1.0
    low_days = trading.filter(pl.col("coverage") < min_coverage)
    return CheckOutcome(
        "universe_coverage",
        low_days.is_empty(),
        f"minimum daily coverage {min_cov:.1%} (threshold {min_coverage:.0%})"
        + (f"; {low_days.height} days below" if low_days.height else ""),
        {
            "min_coverage": min_cov,
            "days_below_threshold": _rows_markdown(low_days),
            "market_holidays": len(holidays),
            "missing_examples": _rows_markdown(missing_members(prices, membership)) if low_days.height else "(none)",
        },
    )


def _no_future_dates_check(raw_prices: pl.DataFrame, today: date) -> CheckOutcome:
    """No row the provider sent is dated after `today`."""
    future = raw_prices.filter(pl.col("date") > today)
    return CheckOutcome(
        "no_future_dates",
        future.is_empty(),
        f"no price dated after {today}" if future.is_empty() else f"provider sent {future.height} rows dated after {today}",
        {"future_rows": future.height, "rows": _rows_markdown(future.select("date", "ticker", "close"))},
    )


def fundamentals_checks(
    snapshot: pl.DataFrame,
    membership: pl.DataFrame,
    unknown_metric_rows: int,
    total_fact_rows: int,
    max_drop_rate: float = 0.10,
    min_coverage: float = 0.5,
) -> list[CheckOutcome]:
    """Checks on the point-in-time fundamentals snapshot: schema and point in time block;
    coverage only warns (the files provider may carry no fundamentals)."""
    outcomes: list[CheckOutcome] = []
    missing = [c for c in FUNDAMENTAL_SNAPSHOT_COLUMNS if c not in snapshot.columns]
    wrong = [
        f"{c}: {snapshot.schema[c]} != {t}"
        for c, t in FUNDAMENTAL_SNAPSHOT_COLUMNS.items()
        if c in snapshot.columns and snapshot.schema[c] != t
    ]
    duplicated = snapshot.select("date", "ticker").is_duplicated().sum() if not missing else 0
    ok = not missing and not wrong and duplicated == 0
    outcomes.append(
        CheckOutcome(
            "schema",
            ok,
            "snapshot matches the fundamentals layout" if ok else f"missing {missing}; wrong types {wrong}; {duplicated} duplicate (date, ticker)",
        )
    )
    if missing:
        return outcomes

    look_ahead = snapshot.filter((pl.col("report_date") > pl.col("date")) | (pl.col("period_end") > pl.col("date")))
    outcomes.append(
        CheckOutcome(
            "point_in_time",
            look_ahead.is_empty(),
            "every fact was known at the snapshot date" if look_ahead.is_empty() else f"{look_ahead.height} rows use facts not yet known",
            {"rows": _rows_markdown(look_ahead.select("date", "ticker", "period_end", "report_date"))},
        )
    )

    drop_rate = unknown_metric_rows / total_fact_rows if total_fact_rows else 0.0
    outcomes.append(
        CheckOutcome(
            "drop_rate",
            drop_rate <= max_drop_rate,
            f"{unknown_metric_rows} of {total_fact_rows} facts had unknown metrics and were dropped ({drop_rate:.2%})",
            {"dropped_rows": unknown_metric_rows, "drop_rate": drop_rate},
        )
    )

    members = membership.filter(~pl.col("is_benchmark")).select("date", "ticker")
    with_data = snapshot.filter(pl.col("report_date").is_not_null()).select("date", "ticker")
    covered = members.join(with_data, on=["date", "ticker"], how="semi").height
    coverage = covered / members.height if members.height else 1.0
    outcomes.append(
        CheckOutcome(
            "coverage",
            coverage >= min_coverage,
            f"{coverage:.1%} of active equities have a quarterly report (threshold {min_coverage:.0%})",
            {"coverage": coverage},
            blocking=False,
        )
    )
    return outcomes


def universe_checks(membership: pl.DataFrame) -> list[CheckOutcome]:
    """Blocking checks on the securities master: one row per (date, ticker), and the benchmark
    listed on every date that has any member (the regime and beta read it)."""
    duplicated = membership.filter(pl.struct("date", "ticker").is_duplicated()).select("date", "ticker").unique()
    days = membership.group_by("date").agg(pl.col("is_benchmark").any().alias("has_benchmark"))
    no_benchmark = days.filter(~pl.col("has_benchmark")).sort("date")
    return [
        CheckOutcome(
            "unique_members",
            duplicated.is_empty(),
            "one row per (date, ticker)" if duplicated.is_empty() else f"{duplicated.height} duplicate (date, ticker) rows",
            {"rows": _rows_markdown(duplicated)},
        ),
        CheckOutcome(
            "benchmark_listed",
            no_benchmark.is_empty(),
            "the benchmark is listed on every date with members"
            if no_benchmark.is_empty()
            else f"no benchmark on {no_benchmark.height} dates",
            {"dates": _rows_markdown(no_benchmark.select("date"))},
        ),
    ]

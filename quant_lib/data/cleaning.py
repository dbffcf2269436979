"""OHLCV cleaning and validation with an auditable report.

Policies follow the data-layer edge cases of seed 004 §8.1 and the integrity framework of
seed 000 §4.1.4:

| problem                                  | action                            | reason key           |
|------------------------------------------|-----------------------------------|----------------------|
| null date or ticker                      | drop                              | `missing_key`        |
| duplicate (date, ticker)                 | drop all but the first occurrence | `duplicate`          |
| null / NaN / inf open, high, low, close  | drop                              | `missing_ohlc`       |
| price (OHLC or adj_close) <= 0           | drop                              | `non_positive_price` |
| adj_close or volume +-inf                | drop                              | `non_finite`         |
| price outside (min_price, max_price)     | drop                              | `price_out_of_range` |
| volume < 0                               | drop                              | `negative_volume`    |
| volume > max_volume                      | drop                              | `volume_out_of_range`|
| adj_close / close outside the ratio band | drop                              | `adj_close_ratio`    |
| volume null / NaN                        | fill with 0.0                     | `volume_filled`      |
| adj_close absent / null / NaN            | fill from close                   | `adj_close_filled`   |
| high < max(open, close)                  | clip high up to max(open, close)  | `high_clipped`       |
| low > min(open, close)                   | clip low down to min(open, close) | `low_clipped`        |
| abs(adj_close return) > threshold, daily | keep, warn                        | `potential_spike`    |
| ... backfill, next day reverts           | drop                              | `confirmed_spike`    |
| ... backfill, no reversion               | keep, warn                        | `persistent_move`    |

A dropped row is counted once, under the first drop reason in the table that applies to it.
Repairs and warnings are counted on the rows that are kept.

This is the one bad-number policy of the platform: a cell that arrives as `N/A`, `nan`, an
empty string (the providers read these as missing), `inf` or an overflowing `1e309` (read as
infinite) lands in the same rows of this table. The bounds are `BadNumberPolicy`
(prices in (1e-6, 1e7), volume <= 1e13, adj_close / close in (1e-4, 1e3): a century of splits
and dividends stays inside, a unit or decimal error does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import polars as pl

from quant_lib.data import schemas
from quant_lib.data.schemas import PRICE_COLUMNS, empty_frame

CleaningContext = Literal["daily", "backfill"]

REQUIRED_PRICE_COLUMNS: tuple[str, ...] = ("date", "ticker", "open", "high", "low", "close", "volume")
OHLC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
NUMERIC_PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
DEFAULT_MAX_DROP_RATE = 0.10
FLAGGED_ROWS_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "reason": pl.String(),
    "action": pl.String(),
}

DROP_REASONS: tuple[str, ...] = (
    "missing_key",
    "duplicate",
    "missing_ohlc",
    "non_positive_price",
    "non_finite",
    "price_out_of_range",
    "negative_volume",
    "volume_out_of_range",
    "adj_close_ratio",
    "confirmed_spike",
)
REPAIR_REASONS: tuple[str, ...] = ("volume_filled", "adj_close_filled", "high_clipped", "low_clipped")
WARNING_REASONS: tuple[str, ...] = ("potential_spike", "persistent_move")


@dataclass(frozen=True)
class BadNumberPolicy:
    """Bounds outside which a number is absurd (a unit, decimal or overflow error) and its row is
    dropped: min_price < price < max_price for open, high, low, close and adj_close;
    0 <= volume <= max_volume; min_adj_ratio < adj_close / close < max_adj_ratio."""

    min_price: float = 1e-6
    max_price: float = 1e7
    max_volume: float = 1e13
    min_adj_ratio: float = 1e-4
    max_adj_ratio: float = 1e3

    def __post_init__(self) -> None:
        if not 0 < self.min_price < self.max_price:
            raise ValueError(f"need 0 < min_price < max_price, got {self.min_price}, {self.max_price}")
        if not 0 < self.min_adj_ratio < self.max_adj_ratio:
            raise ValueError(f"need 0 < min_adj_ratio < max_adj_ratio, got {self.min_adj_ratio}, {self.max_adj_ratio}")
        if not self.max_volume > 0:
            raise ValueError(f"max_volume must be positive, got {self.max_volume}")


DEFAULT_POLICY = BadNumberPolicy()


@dataclass(frozen=True)
class ValidationReport:
    """What `clean_ohlcv` did: counts per reason and a sample of the affected rows."""

    rows_in: int
    rows_out: int
    dropped_by_reason: dict[str, int]
    repaired_by_reason: dict[str, int]
    warnings_by_reason: dict[str, int]
    drop_rate: float
    flagged_rows: pl.DataFrame = field(default_factory=lambda: empty_frame(FLAGGED_ROWS_SCHEMA))
    context: str = "backfill"

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def is_acceptable(self, max_drop_rate: float = DEFAULT_MAX_DROP_RATE) -> bool:
        """True when no more than `max_drop_rate` of the input rows were dropped (seed 000 §4.1.4)."""
        return self.drop_rate <= max_drop_rate

    def to_metadata(self) -> dict[str, object]:
        """A JSON-able summary (e.g. for Dagster output metadata)."""
        return {
            "context": self.context,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_dropped": self.rows_dropped,
            "drop_rate": float(self.drop_rate),
            "dropped_by_reason": dict(self.dropped_by_reason),
            "repaired_by_reason": dict(self.repaired_by_reason),
            "warnings_by_reason": dict(self.warnings_by_reason),
            "flagged_rows_sample": [
                {**row, "date": row["date"].isoformat() if row["date"] is not None else None}
                for row in self.flagged_rows.head(20).to_dicts()
            ],
        }

    def summary(self) -> str:
        """One line per non-empty category, for logs."""

        def fmt(counts: dict[str, int]) -> str:
            items = [f"{k}={v}" for k, v in counts.items() if v]
            return ", ".join(items) if items else "none"

        return (
            f"OHLCV cleaning ({self.context}): {self.rows_in} rows in, {self.rows_out} out, "
            f"drop rate {self.drop_rate:.2%}\n"
            f"  dropped: {fmt(self.dropped_by_reason)}\n"
            f"  repaired: {fmt(self.repaired_by_reason)}\n"
            f"  warnings: {fmt(self.warnings_by_reason)}"
        )


def _coerce_date(df: pl.DataFrame) -> pl.Expr:
    dtype = df.schema["date"]
    if dtype == pl.Date:
        return pl.col("date")
    if isinstance(dtype, pl.Datetime):
        return pl.col("date").dt.date()
    if dtype in (pl.String, pl.Utf8):
        parsed = df.select(pl.col("date").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        bad = df.filter(pl.col("date").is_not_null() & parsed.to_series().is_null())
        if bad.height:
            raise ValueError(
                f"column 'date' has {bad.height} values that are not YYYY-MM-DD dates, "
                f"e.g. {bad['date'].head(3).to_list()}"
            )
        return pl.col("date").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    raise ValueError(f"column 'date' must be a date, datetime or ISO string, got {dtype}")


def _coerce(df: pl.DataFrame) -> pl.DataFrame:
    """Cast to the canonical dtypes; a value that cannot be cast is a ValueError naming the column."""
    exprs = [_coerce_date(df).alias("date"), pl.col("ticker").cast(pl.String).alias("ticker")]
    for column in NUMERIC_PRICE_COLUMNS:
        if column not in df.columns:
            continue
        dtype = df.schema[column]
        if dtype.is_numeric() or dtype == pl.Null:
            exprs.append(pl.col(column).cast(pl.Float64).alias(column))
            continue
        if dtype in (pl.String, pl.Utf8):
            cast = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
            bad = df.filter(pl.col(column).is_not_null() & (pl.col(column).str.strip_chars() != "") & cast.is_null())
            if bad.height:
                raise ValueError(
                    f"column '{column}' has {bad.height} non-numeric values, "
                    f"e.g. {bad[column].head(3).to_list()}"
                )
            exprs.append(cast.alias(column))
            continue
        raise ValueError(f"column '{column}' must be numeric, got {dtype}")
    return df.select(exprs)


def _finite_positive(column: str) -> pl.Expr:
    return pl.col(column).is_finite() & (pl.col(column) > 0)


def _absurd_number_reason(policy: BadNumberPolicy) -> pl.Expr:
    """Drop reason of a row whose keys and OHLC are present and positive but which carries an
    infinite or absurd number (null when none); `volume` / `adj_close` nulls are repaired later."""
    adj, volume = pl.col("adj_close"), pl.col("volume")
    prices = [pl.col(c) for c in OHLC_COLUMNS] + [adj]
    out_of_range = pl.any_horizontal(
        (p.is_finite() & ((p <= policy.min_price) | (p >= policy.max_price))).fill_null(False) for p in prices
    )
    ratio = adj / pl.col("close")
    bad_ratio = (adj.is_finite() & ((ratio <= policy.min_adj_ratio) | (ratio >= policy.max_adj_ratio))).fill_null(False)
    return (
        pl.when(adj.is_infinite().fill_null(False) | volume.is_infinite().fill_null(False))
        .then(pl.lit("non_finite"))
        .when(out_of_range).then(pl.lit("price_out_of_range"))
        .when((volume < 0).fill_null(False)).then(pl.lit("negative_volume"))
        .when((volume.is_finite() & (volume > policy.max_volume)).fill_null(False)).then(pl.lit("volume_out_of_range"))
        .when(bad_ratio).then(pl.lit("adj_close_ratio"))
    )


def _drop_reason(policy: BadNumberPolicy) -> pl.Expr:
    """`_drop`: the first reason a row is dropped (missing key, duplicate, missing or non-finite
    OHLC, non-positive price, then the bad-number policy), null for a kept row."""
    missing_key = pl.col("date").is_null() | pl.col("ticker").is_null() | (pl.col("ticker").str.strip_chars() == "")
    duplicate = ~pl.struct("date", "ticker").is_first_distinct()
    missing_ohlc = ~pl.all_horizontal(pl.col(c).is_not_null() & pl.col(c).is_finite() for c in OHLC_COLUMNS)
    non_positive = ~pl.all_horizontal(pl.col(c) > 0 for c in OHLC_COLUMNS) | (
        pl.col("adj_close").is_not_null() & ~pl.col("adj_close").is_nan() & (pl.col("adj_close") <= 0)
    )
    return (
        pl.when(missing_key).then(pl.lit("missing_key"))
        .when(duplicate).then(pl.lit("duplicate"))
        .when(missing_ohlc).then(pl.lit("missing_ohlc"))
        .when(non_positive).then(pl.lit("non_positive_price"))
        .otherwise(_absurd_number_reason(policy))
        .alias("_drop")
    )


def _repaired(frame: pl.DataFrame) -> pl.LazyFrame:
    """Kept rows sorted by (date, ticker), with the repairs applied and a `_<reason>` flag column
    per repair: NaN volume -> 0, missing adj_close -> close, high/low clipped to enclose open/close."""
    repair_masks = {
        "volume_filled": pl.col("volume").is_null() | pl.col("volume").is_nan(),
        "adj_close_filled": pl.col("adj_close").is_null() | pl.col("adj_close").is_nan(),
        "high_clipped": pl.col("high") < pl.max_horizontal("open", "close"),
        "low_clipped": pl.col("low") > pl.min_horizontal("open", "close"),
    }
    return (
        frame.lazy()
        .filter(pl.col("_drop").is_null())
        .sort("date", "ticker")
        .with_columns(mask.alias(f"_{reason}") for reason, mask in repair_masks.items())
        .with_columns(
            pl.when(pl.col("_volume_filled")).then(0.0).otherwise(pl.col("volume")).alias("volume"),
            pl.when(pl.col("_adj_close_filled")).then(pl.col("close")).otherwise(pl.col("adj_close")).alias("adj_close"),
            pl.max_horizontal("high", "open", "close").alias("high"),
            pl.min_horizontal("low", "open", "close").alias("low"),
        )
    )


def _flagged_samples(
    dropped_rows: pl.DataFrame, kept: pl.DataFrame, spikes: pl.DataFrame, adj_close_given: bool, limit: int
) -> list[pl.DataFrame]:
    """Up to `limit` example rows per kind of action (dropped, each repair, spikes) for the report."""
    samples = [dropped_rows.head(limit).with_columns(pl.lit("dropped").alias("action"))]
    for reason in REPAIR_REASONS:
        if reason == "adj_close_filled" and not adj_close_given:
            continue
        samples.append(
            kept.lazy().filter(pl.col(f"_{reason}")).select("date", "ticker", pl.lit(reason).alias("reason"),
                                                            pl.lit("repaired").alias("action"))
            .head(limit).collect()
        )
    samples.append(
        spikes.head(limit).with_columns(
            pl.when(pl.col("reason") == "confirmed_spike").then(pl.lit("dropped")).otherwise(pl.lit("warned"))
            .alias("action")
        )
    )
    return samples


def clean_ohlcv(
    df: pl.DataFrame,
    context: CleaningContext = "backfill",
    spike_threshold: float = 0.5,
    max_flagged_rows: int = 200,
    policy: BadNumberPolicy = DEFAULT_POLICY,
) -> tuple[pl.DataFrame, ValidationReport]:
    """Clean a raw OHLCV panel (PRICE_COLUMNS layout) and report what was done.

    Spikes: r_t = adj_close_t / adj_close_{t-1} - 1 per ticker; |r_t| > `spike_threshold` is a spike.
    In the "backfill" context a spike whose next price returns within `spike_threshold / 2` of the
    pre-spike price (|p_{t+1} / p_{t-1} - 1| <= threshold / 2) is a `confirmed_spike` and dropped;
    otherwise it is a `persistent_move` (kept, warned). A spike on the last row of a ticker cannot
    be verified and is a `potential_spike`, as is every spike in the "daily" context.

    Returns the cleaned frame, sorted by (date, ticker) and validated by `PricesSchema`, and a
    `ValidationReport`. Raises ValueError on missing columns, uncastable values or a bad context.
    """
    if context not in ("daily", "backfill"):
        raise ValueError(f"context must be 'daily' or 'backfill', got {context!r}")
    if not spike_threshold > 0:
        raise ValueError(f"spike_threshold must be positive, got {spike_threshold}")
    missing = [c for c in REQUIRED_PRICE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"price frame is missing required columns {missing}; has {df.columns}")

    rows_in = df.height
    if rows_in == 0:
        empty = empty_frame(PRICE_COLUMNS)
        return empty, _report(rows_in, empty, {}, {}, {}, [], max_flagged_rows, context)

    frame = _coerce(df)
    adj_close_given = "adj_close" in frame.columns
    if not adj_close_given:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))

    frame = frame.with_columns(_drop_reason(policy))
    dropped_rows = frame.select("date", "ticker", pl.col("_drop").alias("reason")).filter(pl.col("reason").is_not_null())
    kept = _repaired(frame).with_columns(_spike_labels(context, spike_threshold)).collect()
    repaired = {reason: int(kept[f"_{reason}"].sum()) for reason in REPAIR_REASONS}
    spikes = kept.select("date", "ticker", pl.col("_spike").alias("reason")).filter(pl.col("reason").is_not_null())
    spike_counts = dict(spikes.group_by("reason").len().iter_rows())
    warned = {reason: int(spike_counts.get(reason, 0)) for reason in WARNING_REASONS}
    drop_counts = dict(dropped_rows.group_by("reason").len().iter_rows())
    dropped = {reason: int(drop_counts.get(reason, 0)) for reason in DROP_REASONS}
    dropped["confirmed_spike"] = int(spike_counts.get("confirmed_spike", 0))
    samples = _flagged_samples(dropped_rows, kept, spikes, adj_close_given, max_flagged_rows)

    out = kept.filter(pl.col("_spike").ne_missing("confirmed_spike")).select(list(PRICE_COLUMNS))
    out = schemas.PricesSchema.validate(out)
    return out, _report(rows_in, out, dropped, repaired, warned, samples, max_flagged_rows, context)


def _report(
    rows_in: int,
    out: pl.DataFrame,
    dropped: dict[str, int],
    repaired: dict[str, int],
    warned: dict[str, int],
    samples: list[pl.DataFrame],
    max_flagged_rows: int,
    context: str,
) -> ValidationReport:
    frames = [s.select(list(FLAGGED_ROWS_SCHEMA)).cast(FLAGGED_ROWS_SCHEMA) for s in samples if s.height]  # type: ignore[arg-type]
    flagged = (
        pl.concat(frames).sort("date", "ticker", nulls_last=False, maintain_order=True).head(max_flagged_rows)
        if frames
        else empty_frame(FLAGGED_ROWS_SCHEMA)
    )
    return ValidationReport(
        rows_in=rows_in,
        rows_out=out.height,
        dropped_by_reason={reason: dropped.get(reason, 0) for reason in DROP_REASONS},
        repaired_by_reason={reason: repaired.get(reason, 0) for reason in REPAIR_REASONS},
        warnings_by_reason={reason: warned.get(reason, 0) for reason in WARNING_REASONS},
        drop_rate=(rows_in - out.height) / rows_in if rows_in else 0.0,
        flagged_rows=flagged,
        context=context,
    )


def _spike_labels(context: CleaningContext, threshold: float) -> pl.Expr:
    """Per-row spike label (null when no spike); rows must be in date order within each ticker."""
    price = pl.col("adj_close")
    previous = price.shift(1).over("ticker")
    following = price.shift(-1).over("ticker")
    spike = ((price / previous - 1.0).abs() > threshold).fill_null(False)
    if context == "daily":
        return pl.when(spike).then(pl.lit("potential_spike")).alias("_spike")
    reverts = ((following / previous - 1.0).abs() <= threshold / 2).fill_null(False)
    confirmed = spike & reverts
    is_reversion_of_confirmed = confirmed.shift(1).over("ticker").fill_null(False)
    return (
        pl.when(confirmed)
        .then(pl.lit("confirmed_spike"))
        .when(spike & is_reversion_of_confirmed)
        .then(pl.lit(None, dtype=pl.String))
        .when(spike & following.is_null())
        .then(pl.lit("potential_spike"))
        .when(spike)
        .then(pl.lit("persistent_move"))
        .alias("_spike")
    )


def validate_prices(df: pl.DataFrame, max_examples: int = 5) -> list[str]:
    """Human-readable problems of a price frame against the canonical layout (never raises).

    An empty list means the frame passes `PricesSchema`.
    """
    problems: list[str] = []
    missing = [c for c in PRICE_COLUMNS if c not in df.columns]
    if missing:
        return [f"missing columns {missing}"]
    extra = [c for c in df.columns if c not in PRICE_COLUMNS]
    if extra:
        problems.append(f"unexpected columns {extra}")
    wrong_types = {c: str(df.schema[c]) for c, t in PRICE_COLUMNS.items() if df.schema[c] != t}
    if wrong_types:
        problems.append(f"wrong dtypes {wrong_types} (expected {dict((c, str(t)) for c, t in PRICE_COLUMNS.items())})")
        return problems

    def examples(mask: pl.Expr, columns: list[str]) -> tuple[int, str]:
        hits = df.filter(mask.fill_null(True))
        rows = hits.select(["date", "ticker", *columns]).head(max_examples).to_dicts()
        return hits.height, "; ".join(str(r) for r in rows)

    checks: list[tuple[str, pl.Expr, list[str]]] = [
        ("null date or ticker", pl.col("date").is_null() | pl.col("ticker").is_null(), []),
        ("duplicate (date, ticker)", pl.struct("date", "ticker").is_duplicated(), []),
    ]
    for column in NUMERIC_PRICE_COLUMNS:
        if column == "volume":
            bad = pl.col(column).is_null() | ~pl.col(column).is_finite() | (pl.col(column) < 0)
            checks.append(("volume null, non-finite or negative", bad, [column]))
        else:
            checks.append((f"{column} null, non-finite or <= 0", ~_finite_positive(column), [column]))
    checks.append(
        ("high < max(open, close)", pl.col("high") < pl.max_horizontal("open", "close"), ["open", "high", "close"])
    )
    checks.append(
        ("low > min(open, close)", pl.col("low") > pl.min_horizontal("open", "close"), ["open", "low", "close"])
    )
    for label, mask, columns in checks:
        count, sample = examples(mask, columns)
        if count:
            problems.append(f"{count} rows with {label}, e.g. {sample}")
    if not problems:
        import pandera.errors

        try:
            schemas.PricesSchema.validate(df, lazy=True)
        except (pandera.errors.SchemaError, pandera.errors.SchemaErrors) as error:
            problems.append(f"schema: {error}")
    return problems


def check_no_future_dates(df: pl.DataFrame, as_of: date, date_column: str = "date") -> list[str]:
    """Problems if any row is dated after `as_of` (look-ahead); empty list when clean."""
    if date_column not in df.columns:
        return [f"missing column '{date_column}'"]
    future = df.filter(pl.col(date_column) > as_of)
    if future.height == 0:
        return []
    return [
        f"{future.height} rows dated after {as_of.isoformat()}, latest {future[date_column].max()}, "
        f"e.g. {future.head(3).to_dicts()}"
    ]

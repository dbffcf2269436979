"""Composite factor rankings with regime-dependent weights (seed sections 4.2.5, 5.2, 6.2)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from quant_lib.factors._panel import ENGINE, require_columns, row_sum, sorted_by_date_and_ticker
from quant_lib.regime.weights import DynamicFactorWeights

BREAKDOWN_FACTORS: tuple[str, ...] = ("vsm", "bab", "qmj", "upside", "pead", "sentiment")
"""Factor z-scores returned as columns (the GET /quant/rankings response of seed section 5.2)."""
EXTRA_BREAKDOWN_FACTORS: tuple[str, ...] = ("accruals", "ivol", "revisions")
"""The other registry factors' z-scores, also returned as columns."""

RANKING_COLUMNS: tuple[str, ...] = (
    "date", "ticker", "score", "rank", "regime", "model_name", *BREAKDOWN_FACTORS, *EXTRA_BREAKDOWN_FACTORS,
    "metadata_json",
)


def compute_rankings(
    scores: pl.DataFrame,
    regimes: pl.DataFrame | None,
    weights: DynamicFactorWeights | Mapping | None = None,
    model_name: str = "ranking_v3",
    json_digits: int = 6,
    with_metadata: bool = True,
) -> pl.DataFrame:
    """Regime-weighted composite score and rank per (date, ticker).

    With f over the `z_<f>` columns of `scores` that are non-null on the row and w the weights of the
    date's regime (from `regimes` (date, regime); a missing date or unknown label uses "Unknown"):
    score = sum_f w_f z_f / sum_f w_f (weights renormalized over the available factors). Rows with
    no available weighted factor have no score and are left out. rank = 1 for the highest score on
    the date (int32; ties broken by ticker). Columns: date, ticker, score, rank, regime, model_name,
    the z-scores vsm, bab, qmj, upside, pead, sentiment, accruals, ivol, revisions (null when absent)
    and metadata_json = {"regime": ..., "weights": {factor: effective w_f}} (`json_digits` decimals;
    effective weights are renormalized over the row's available factors, 0 for a missing one, so
    factor f contributes weights[f] * <f column> and the contributions sum to the score; null with
    `with_metadata=False`). The JSON depends only on (regime, which factors are available), so it is
    built once per such pattern and joined. Sorted by (date, rank).
    """
    require_columns(scores, ("date", "ticker"), "scores")
    table = DynamicFactorWeights.coerce(weights)
    factors = [c[2:] for c in scores.columns if c.startswith("z_")]
    if not factors:
        raise ValueError(f"scores has no z_<factor> columns; has {scores.columns}")

    if regimes is None:
        regime_frame = pl.DataFrame(schema={"date": pl.Date, "regime": pl.String})
    else:
        require_columns(regimes, ("date", "regime"), "regimes")
        regime_frame = regimes.select(pl.col("date").cast(pl.Date), pl.col("regime").cast(pl.String))
        dup = regime_frame.filter(pl.col("date").is_duplicated())
        if dup.height:
            raise ValueError(f"regimes has several rows per date, e.g. {dup.head(4).rows()}")

    wide = table.to_frame()
    weight_frame = wide.select(
        pl.col("regime").alias("_regime_key"),
        *[(pl.col(f) if f in wide.columns else pl.lit(0.0)).cast(pl.Float64).alias(f"_w_{f}") for f in factors],
    )
    known = list(table.regimes)
    base = scores.select(
        pl.col("date").cast(pl.Date),
        pl.col("ticker").cast(pl.String),
        *[pl.col(f"z_{f}").cast(pl.Float64) for f in factors],
    )
    base = sorted_by_date_and_ticker(base)
    per_date = (
        base.select(pl.col("date").unique())
        .join(regime_frame, on="date", how="left")
        .with_columns(pl.col("regime").fill_null("Unknown"))
        .with_columns(
            _regime_key=pl.when(pl.col("regime").is_in(known)).then(pl.col("regime")).otherwise(pl.lit("Unknown"))
        )
        .join(weight_frame, on="_regime_key", how="left")
        .drop("_regime_key")
    )
    lf = base.with_columns(pl.col("date").set_sorted()).lazy().join(
        per_date.lazy(), on="date", how="left", maintain_order="left"
    )
    z = {f: pl.col(f"z_{f}") for f in factors}
    available = {f: pl.when(z[f].is_finite()).then(pl.col(f"_w_{f}")).otherwise(0.0) for f in factors}
    lf = lf.with_columns(_total=row_sum(list(available.values())))
    lf = lf.with_columns([(available[f] / pl.col("_total")).alias(f"_w_{f}") for f in factors])
    lf = lf.with_columns(
        [pl.when(pl.col(f"_w_{f}") > 0).then(pl.col(f"_w_{f}") * z[f]).otherwise(0.0).alias(f"_c_{f}") for f in factors]
    )
    lf = lf.filter(pl.col("_total") > 0).with_columns(score=row_sum([pl.col(f"_c_{f}") for f in factors]))
    lf = lf.with_columns(rank=pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32))
    pattern = [z[f].is_finite().fill_null(False).cast(pl.Int64) * (1 << i) for i, f in enumerate(factors)]
    lf = lf.with_columns(_pattern=pl.sum_horizontal(pattern))
    out_cols = [
        "date",
        "ticker",
        "score",
        "rank",
        "regime",
        pl.lit(model_name, dtype=pl.String).alias("model_name"),
        *[
            (z[f] if f in factors else pl.lit(None, dtype=pl.Float64)).alias(f)
            for f in (*BREAKDOWN_FACTORS, *EXTRA_BREAKDOWN_FACTORS)
        ],
    ]
    if with_metadata:
        meta = (
            lf.select("regime", "_pattern", *[f"_w_{f}" for f in factors])
            .unique(["regime", "_pattern"])
            .select(
                "regime",
                "_pattern",
                pl.struct(
                    pl.col("regime"),
                    pl.struct([pl.col(f"_w_{f}").round(json_digits).alias(f) for f in factors]).alias("weights"),
                )
                .struct.json_encode()
                .alias("metadata_json"),
            )
        )
        out = lf.join(meta, on=["regime", "_pattern"], how="left", maintain_order="left").select(
            *out_cols, "metadata_json"
        )
    else:
        out = lf.select(*out_cols, pl.lit(None, dtype=pl.String).alias("metadata_json"))
    return _sorted_by_date_and_rank(out.collect(engine=ENGINE))


def _sorted_by_date_and_rank(frame: pl.DataFrame) -> pl.DataFrame:
    """Reorder a date-sorted frame whose `rank` is 1..n within each date to (date, rank) order.

    Row i goes to position first_row(date_i) + rank_i - 1: an inverse permutation, no sort.
    """
    if frame.height == 0:
        return frame
    position = (
        frame.select("date", "rank")
        .with_row_index("_row")
        .select(pl.col("_row").cast(pl.Int64).min().over("date") + pl.col("rank").cast(pl.Int64) - 1)
        .to_series()
        .to_numpy()
    )
    order = np.empty_like(position)
    order[position] = np.arange(position.size, dtype=position.dtype)
    return frame[order]

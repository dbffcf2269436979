"""Cross-sectional factor processing: winsorize -> z-score -> sector-neutralize (seed section 4.2.3).

Everything is a window expression over `date` (or `date, sector`), so one call processes the
whole panel and the result at date D depends only on the rows dated D.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from quant_lib.factors._panel import ENGINE, finite, require_columns, sorted_by_date_and_ticker, with_finite
from quant_lib.factors.registry import FACTOR_NAMES


def process_factors(
    values: pl.DataFrame,
    factor_names: Sequence[str] | None = None,
    sector_col: str | None = "sector",
    winsor: tuple[float, float] = (0.01, 0.99),
    min_names: int = 3,
) -> pl.DataFrame:
    """Winsorized, z-scored, sector-neutral factor scores `z_<factor>` per date.

    For each factor f and date D, over the tickers with a finite value (NaN/inf count as missing):
    1. winsorize: clip to the cross-sectional `winsor` quantiles (linear interpolation);
    2. z-score: z = (x - mean) / std (sample std);
    3. sector-neutralize: n = z - mean(z | date, sector), then re-standardize z_f = n / std(n) so
       the scores have mean 0 and std 1 across the date and mean 0 inside every sector (a ticker
       alone in its sector gets 0).
    A missing value stays null (excluded from every statistic); a date with fewer than `min_names`
    values, or zero dispersion, gives null for that factor. `factor_names` defaults to the
    registry's factors present in `values`. `sector_col=None` skips step 3.
    Returns date, ticker, sector (if any), z_<factor>..., sorted by (date, ticker).
    """
    require_columns(values, ("date", "ticker"), "factor values")
    names = [f for f in (factor_names or FACTOR_NAMES) if factor_names is not None or f in values.columns]
    require_columns(values, names, "factor values")
    if sector_col is not None:
        require_columns(values, (sector_col,), "factor values")
    lo_q, hi_q = winsor
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ValueError(f"winsor quantiles must satisfy 0 <= low < high <= 1, got {winsor}")

    keys = ["date", "ticker"] + ([sector_col] if sector_col is not None else [])
    frame = values.select(keys + [pl.col(f).cast(pl.Float64).alias(f) for f in names])
    frame = sorted_by_date_and_ticker(frame)
    lf = frame.with_columns(pl.col("date").set_sorted()).lazy()
    lf = lf.with_columns([finite(pl.col(f)).alias(f) for f in names])
    lf = lf.with_columns(
        [pl.col(f).quantile(lo_q, "linear").over("date").alias(f"_lo_{f}") for f in names]
        + [pl.col(f).quantile(hi_q, "linear").over("date").alias(f"_hi_{f}") for f in names]
        + [pl.col(f).count().over("date").alias(f"_n_{f}") for f in names]
    )
    lf = lf.with_columns(
        pl.when(pl.col(f"_n_{f}") >= min_names).then(pl.col(f).clip(pl.col(f"_lo_{f}"), pl.col(f"_hi_{f}"))).alias(f)
        for f in names
    )
    if sector_col is None:
        lf = with_finite(
            lf, **{f: (pl.col(f) - pl.col(f).mean().over("date")) / pl.col(f).std().over("date") for f in names}
        )
    else:
        # z - mean(z | sector) = (w - mean(w | sector)) / std(w), so the neutral score is the
        # sector-demeaned winsorized value over its own cross-sectional std.
        sector_code = pl.col(sector_col).cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Int64)
        lf = lf.with_columns(_group=pl.col("date").to_physical().cast(pl.Int64) * 2**32 + sector_code)
        sector_means = lf.group_by("_group").agg(pl.col(f).mean().alias(f"_m_{f}") for f in names)
        lf = lf.join(sector_means, on="_group", how="left", maintain_order="left").with_columns(
            (pl.col(f) - pl.col(f"_m_{f}")).alias(f) for f in names
        )
        lf = with_finite(lf, **{f: pl.col(f) / pl.col(f).std().over("date") for f in names})
    out = lf.select(keys + [pl.col(f).alias(f"z_{f}") for f in names])
    return out.collect(engine=ENGINE)

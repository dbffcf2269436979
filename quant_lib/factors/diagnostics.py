"""Factor diagnostics (what alphalens shows), vectorized over the (factor x date x ticker) panel.

Forward returns look ahead by construction: diagnostics evaluate factors after the fact and must
never feed a trading decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from quant_lib.factors._panel import ENGINE, normalize_prices, require_columns


def forward_returns(prices: pl.DataFrame, horizons: Sequence[int]) -> pl.DataFrame:
    """(date, ticker, fwd_<h>...) with fwd_h = adj_close_{t+h} / adj_close_t - 1 (h trading rows ahead)."""
    base = normalize_prices(prices)
    return base.select(
        "date",
        pl.col("ticker").cast(pl.String),
        *[(pl.col("adj_close").shift(-h) / pl.col("adj_close") - 1.0).over("ticker").alias(f"fwd_{h}") for h in horizons],
    )


def beta_neutral_forward_returns(
    prices: pl.DataFrame,
    betas: pl.DataFrame,
    benchmark_ticker: str = "SPY",
    horizons: Sequence[int] = (1, 5, 21),
) -> pl.DataFrame:
    """(date, ticker, fwd_<h>...) market-neutral: fwd_h - beta_t * benchmark fwd_h.

    `betas` (date, ticker, beta) should be ex-ante estimates (e.g. the factor values' `beta`);
    rows without a beta are dropped. The benchmark's own rows are dropped.
    """
    require_columns(betas, ("date", "ticker", "beta"), "betas")
    fwd = forward_returns(prices, horizons)
    bench = fwd.filter(pl.col("ticker") == benchmark_ticker).select(
        "date", *[pl.col(f"fwd_{h}").alias(f"_m_{h}") for h in horizons]
    )
    if bench.height == 0:
        raise ValueError(f"prices has no rows for the benchmark ticker {benchmark_ticker!r}")
    return (
        fwd.filter(pl.col("ticker") != benchmark_ticker)
        .join(betas.select(pl.col("date").cast(pl.Date), pl.col("ticker").cast(pl.String), "beta"),
              on=["date", "ticker"], how="inner")
        .join(bench, on="date", how="left")
        .select(
            "date",
            "ticker",
            *[(pl.col(f"fwd_{h}") - pl.col("beta") * pl.col(f"_m_{h}")).alias(f"fwd_{h}") for h in horizons],
        )
        .filter(pl.col("date").is_not_null())
    )


def _t_stat(mean: pl.Expr, std: pl.Expr, n: pl.Expr) -> pl.Expr:
    t = mean / std * n.cast(pl.Float64).sqrt()
    return pl.when(t.is_finite()).then(t)


def factor_diagnostics(
    scores: pl.DataFrame,
    prices: pl.DataFrame | None,
    horizons: Sequence[int] = (1, 5, 21),
    quantiles: int = 5,
    factors: Sequence[str] | None = None,
    forward: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Information coefficients, quantile returns, turnover and IC decay for every factor.

    `factors` defaults to the `z_*` columns of `scores` (date, ticker, factors...). Per factor f,
    horizon h and date D over the tickers with both values:
    - IC = Pearson corr(f_D, fwd_h), rank IC = Spearman corr; summary: mean, std, IR = mean/std,
      t = mean/std * sqrt(n_dates) (overlapping windows for h > 1 overstate t by about sqrt(h)),
      hit rate = share of dates with IC > 0;
    - quantile q in 1..`quantiles` by ordinal rank (ties split by ticker order), equal-sized buckets;
      mean forward return per quantile averaged over dates; spread = top minus bottom, with t-stat;
    - turnover: share of the top quantile at D not in it on the previous date, and 1 minus the rank
      autocorrelation between consecutive dates (h-independent);
    - IC decay: mean IC and rank IC of each factor across horizons.
    `forward` replaces the raw forward returns computed from `prices` by a (date, ticker, fwd_<h>...)
    frame, e.g. `beta_neutral_forward_returns` (then `prices` may be None).
    Returns {"ic_by_date", "ic_summary", "quantile_returns", "quantile_spread", "turnover", "ic_decay"}.
    """
    require_columns(scores, ("date", "ticker"), "scores")
    names = list(factors) if factors is not None else [c for c in scores.columns if c.startswith("z_")]
    if not names:
        raise ValueError(f"no factor columns to diagnose; scores has {scores.columns}")
    require_columns(scores, names, "scores")
    if quantiles < 2:
        raise ValueError(f"quantiles must be >= 2, got {quantiles}")
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be positive trading-day counts, got {horizons}")

    if forward is None:
        if prices is None:
            raise ValueError("need prices or a forward-returns frame")
        fwd = forward_returns(prices, horizons)
    else:
        require_columns(forward, ("date", "ticker", *[f"fwd_{h}" for h in horizons]), "forward returns")
        fwd = forward.select(
            pl.col("date").cast(pl.Date), pl.col("ticker").cast(pl.String), *[f"fwd_{h}" for h in horizons]
        )
    long = (
        scores.lazy()
        .select(pl.col("date").cast(pl.Date), "ticker", *[pl.col(f).cast(pl.Float64) for f in names])
        .unpivot(index=["date", "ticker"], on=names, variable_name="factor", value_name="value")
        .filter(pl.col("value").is_finite())
        .join(fwd.lazy(), on=["date", "ticker"], how="inner")
    )
    fcols = [f"fwd_{h}" for h in horizons]

    ic_by_date = (
        long.group_by("factor", "date")
        .agg(
            pl.len().alias("n"),
            *[pl.corr("value", c).alias(f"ic_{h}") for h, c in zip(horizons, fcols, strict=True)],
            *[pl.corr("value", c, method="spearman").alias(f"rank_ic_{h}") for h, c in zip(horizons, fcols, strict=True)],
        )
        .sort("factor", "date")
        .collect(engine=ENGINE)
    )
    ic_long = ic_by_date.unpivot(
        index=["factor", "date"],
        on=[f"ic_{h}" for h in horizons] + [f"rank_ic_{h}" for h in horizons],
        variable_name="metric",
        value_name="ic",
    ).with_columns(
        kind=pl.when(pl.col("metric").str.starts_with("rank_")).then(pl.lit("rank_ic")).otherwise(pl.lit("ic")),
        horizon=pl.col("metric").str.extract(r"(\d+)$").cast(pl.Int32),
    )
    per_kind = (
        ic_long.filter(pl.col("ic").is_finite())
        .group_by("factor", "horizon", "kind")
        .agg(
            pl.col("ic").mean().alias("mean"),
            pl.col("ic").std().alias("std"),
            pl.len().alias("n_dates"),
            (pl.col("ic") > 0).mean().alias("hit_rate"),
        )
        .with_columns(ir=pl.col("mean") / pl.col("std"), t_stat=_t_stat(pl.col("mean"), pl.col("std"), pl.col("n_dates")))
    )
    ic_summary = (
        per_kind.filter(pl.col("kind") == "ic")
        .select("factor", "horizon", "n_dates", pl.col("mean").alias("mean_ic"), pl.col("std").alias("ic_std"),
                pl.col("ir").alias("ic_ir"), pl.col("t_stat").alias("ic_t_stat"), pl.col("hit_rate").alias("ic_hit_rate"))
        .join(
            per_kind.filter(pl.col("kind") == "rank_ic").select(
                "factor", "horizon", pl.col("mean").alias("mean_rank_ic"), pl.col("std").alias("rank_ic_std"),
                pl.col("t_stat").alias("rank_ic_t_stat"),
            ),
            on=["factor", "horizon"],
            how="full",
            coalesce=True,
        )
        .sort("factor", "horizon")
    )

    bucketed = long.with_columns(
        quantile=(
            (pl.col("value").rank("ordinal").over("factor", "date") - 1) * quantiles // pl.len().over("factor", "date")
            + 1
        ).cast(pl.Int32),
        _n=pl.len().over("factor", "date"),
    ).filter(pl.col("_n") >= quantiles)
    q_by_date = (
        bucketed.unpivot(index=["factor", "date", "quantile"], on=fcols, variable_name="h", value_name="fwd")
        .with_columns(horizon=pl.col("h").str.extract(r"(\d+)$").cast(pl.Int32))
        .group_by("factor", "horizon", "date", "quantile")
        .agg(pl.col("fwd").mean())
        .collect(engine=ENGINE)
    )
    quantile_returns = (
        q_by_date.group_by("factor", "horizon", "quantile")
        .agg(pl.col("fwd").mean().alias("mean_return"), pl.col("fwd").count().alias("n_dates"))
        .sort("factor", "horizon", "quantile")
    )
    spread_by_date = (
        q_by_date.filter(pl.col("quantile").is_in([1, quantiles]))
        .pivot(on="quantile", index=["factor", "horizon", "date"], values="fwd")
        .rename({"1": "bottom", str(quantiles): "top"})
        .with_columns(spread=pl.col("top") - pl.col("bottom"))
        .filter(pl.col("spread").is_finite())
    )
    quantile_spread = (
        spread_by_date.group_by("factor", "horizon")
        .agg(
            pl.col("spread").mean().alias("mean_spread"),
            pl.col("spread").std().alias("spread_std"),
            pl.len().alias("n_dates"),
        )
        .with_columns(spread_t_stat=_t_stat(pl.col("mean_spread"), pl.col("spread_std"), pl.col("n_dates")))
        .sort("factor", "horizon")
    )

    day_index = scores.select(pl.col("date").cast(pl.Date).unique().sort()).with_row_index("day").lazy()
    ranked = (
        bucketed.select("factor", "date", "ticker", "quantile", rank=pl.col("value").rank("average").over("factor", "date"))
        .join(day_index, on="date")
        .sort("factor", "ticker", "date")
        .with_columns(
            prev_ok=(pl.col("day").shift(1) == pl.col("day") - 1).over("factor", "ticker"),
            prev_rank=pl.col("rank").shift(1).over("factor", "ticker"),
            prev_q=pl.col("quantile").shift(1).over("factor", "ticker"),
        )
        .with_columns(
            prev_rank=pl.when(pl.col("prev_ok")).then(pl.col("prev_rank")),
            prev_q=pl.when(pl.col("prev_ok")).then(pl.col("prev_q")),
        )
    )
    turnover_by_date = (
        ranked.filter(pl.col("day") > 0)
        .group_by("factor", "date")
        .agg(
            rank_autocorr=pl.corr("rank", "prev_rank"),
            top_turnover=1.0
            - ((pl.col("quantile") == quantiles) & (pl.col("prev_q") == quantiles)).sum()
            / (pl.col("quantile") == quantiles).sum(),
            has_prev=pl.col("prev_q").is_not_null().any(),
        )
        .filter(pl.col("has_prev"))
        .collect(engine=ENGINE)
    )
    turnover = (
        turnover_by_date.group_by("factor")
        .agg(
            pl.col("top_turnover").filter(pl.col("top_turnover").is_finite()).mean().alias("top_quantile_turnover"),
            pl.col("rank_autocorr").filter(pl.col("rank_autocorr").is_finite()).mean().alias("mean_rank_autocorr"),
        )
        .with_columns(rank_turnover=1.0 - pl.col("mean_rank_autocorr"))
        .sort("factor")
    )
    ic_decay = (
        ic_summary.group_by("factor")
        .agg(
            *[pl.col("mean_ic").filter(pl.col("horizon") == h).first().alias(f"ic_h{h}") for h in horizons],
            *[pl.col("mean_rank_ic").filter(pl.col("horizon") == h).first().alias(f"rank_ic_h{h}") for h in horizons],
        )
        .sort("factor")
    )
    return {
        "ic_by_date": ic_by_date,
        "ic_summary": ic_summary,
        "quantile_returns": quantile_returns,
        "quantile_spread": quantile_spread,
        "turnover": turnover,
        "ic_decay": ic_decay,
    }


def _cell(value: object, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def to_markdown(table: pl.DataFrame, digits: int = 4, max_rows: int = 50) -> str:
    """A GitHub-flavoured markdown table of the first `max_rows` rows (floats to `digits` decimals)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in table.head(max_rows).iter_rows()]
    lines = [header, rule, *rows]
    if table.height > max_rows:
        lines.append(f"\n_{table.height - max_rows} more rows not shown_")
    return "\n".join(lines)

"""Factor diagnostics (what alphalens shows), vectorized over the (factor x date x ticker) panel.

Forward returns look ahead by construction: diagnostics evaluate factors after the fact and must
never feed a trading decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from quant_lib.factors._panel import finite, normalize_prices, require_columns


def forward_returns(prices: pl.DataFrame, horizons: Sequence[int]) -> pl.DataFrame:
    """(date, ticker, fwd_<h>...) with fwd_h = adj_close_{t+h} / adj_close_t - 1 (h trading rows ahead)."""
    base = normalize_prices(prices)
    return base.select(
        "date",
        pl.col("ticker").cast(pl.String),
        *[
            (pl.col("adj_close").shift(-h) / pl.col("adj_close") - 1.0).over("ticker").alias(f"fwd_{h}")
            for h in horizons
        ],
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
    fcols = [f"fwd_{h}" for h in horizons]
    idx = {f: i for i, f in enumerate(names)}
    wide = (
        scores.select(
            pl.col("date").cast(pl.Date),
            pl.col("ticker").cast(pl.String),
            *[pl.col(f).cast(pl.Float64).alias(f"_v{idx[f]}") for f in names],
        )
        .join(fwd, on=["date", "ticker"], how="inner")
        .with_columns([finite(pl.col(f"_v{i}")).alias(f"_v{i}") for i in idx.values()])
        .sort("date", "ticker")
        .with_columns(pl.col("date").set_sorted())
    )
    v = {f: pl.col(f"_v{idx[f]}") for f in names}

    ic_wide = (
        wide.group_by("date")
        .agg(
            *[v[f].count().alias(f"n|{f}") for f in names],
            *[pl.corr(v[f], c).alias(f"ic_{h}|{f}") for f in names for h, c in zip(horizons, fcols, strict=True)],
            *[
                pl.corr(v[f], c, method="spearman").alias(f"rank_ic_{h}|{f}")
                for f in names
                for h, c in zip(horizons, fcols, strict=True)
            ],
        )
        .sort("date")
    )
    metric_names = ["n"] + [f"ic_{h}" for h in horizons] + [f"rank_ic_{h}" for h in horizons]
    ic_by_date = pl.concat(
        [
            ic_wide.select(
                pl.lit(f).alias("factor"), "date", *[pl.col(f"{m}|{f}").alias(m) for m in metric_names]
            ).filter(pl.col("n") > 0)
            for f in names
        ]
    ).with_columns(pl.col("n").cast(pl.UInt32))
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
        .with_columns(
            ir=pl.col("mean") / pl.col("std"), t_stat=_t_stat(pl.col("mean"), pl.col("std"), pl.col("n_dates"))
        )
    )
    ic_summary = (
        per_kind.filter(pl.col("kind") == "ic")
        .select("factor", "horizon", "n_dates", pl.col("mean").alias("mean_ic"), pl.col("std").alias("ic_std"),
                pl.col("ir").alias("ic_ir"), pl.col("t_stat").alias("ic_t_stat"),
                pl.col("hit_rate").alias("ic_hit_rate"))
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

    counts = {f: v[f].count().over("date") for f in names}
    ranked = wide.with_columns(
        *[
            pl.when(counts[f] >= quantiles)
            .then((v[f].rank("ordinal").over("date") - 1) * quantiles // counts[f] + 1)
            .cast(pl.Int32)
            .alias(f"_q{idx[f]}")
            for f in names
        ],
        *[v[f].rank("average").over("date").alias(f"_r{idx[f]}") for f in names],
    )
    q_by_date = pl.concat(
        [
            ranked.filter(pl.col(f"_q{idx[f]}").is_not_null())
            .group_by("date", pl.col(f"_q{idx[f]}").alias("quantile"))
            .agg([pl.col(c).mean().alias(f"{h}") for h, c in zip(horizons, fcols, strict=True)])
            .unpivot(index=["date", "quantile"], variable_name="horizon", value_name="fwd")
            .select(
                pl.lit(f).alias("factor"), pl.col("horizon").cast(pl.Int32), "date", "quantile", "fwd"
            )
            for f in names
        ]
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

    day = pl.col("date").rank("dense")
    lagged = (
        ranked.select("date", "ticker", *[f"_q{i}" for i in idx.values()], *[f"_r{i}" for i in idx.values()])
        .with_columns(_day=day)
        .sort("ticker", "date")
        .with_columns(_prev_ok=(pl.col("_day").shift(1) == pl.col("_day") - 1).over("ticker"))
        .with_columns(
            *[
                pl.when(pl.col("_prev_ok")).then(pl.col(f"_{kind}{i}").shift(1).over("ticker")).alias(f"_p{kind}{i}")
                for kind in ("q", "r")
                for i in idx.values()
            ],
        )
    )
    top = {i: pl.col(f"_q{i}") == quantiles for i in idx.values()}
    turnover_wide = lagged.group_by("date").agg(
        *[pl.corr(f"_r{i}", f"_pr{i}").alias(f"rank_autocorr|{f}") for f, i in idx.items()],
        *[
            (1.0 - (top[i] & (pl.col(f"_pq{i}") == quantiles)).sum() / top[i].sum()).alias(f"top_turnover|{f}")
            for f, i in idx.items()
        ],
        *[pl.col(f"_pq{i}").is_not_null().any().alias(f"has_prev|{f}") for f, i in idx.items()],
    )
    turnover_by_date = pl.concat(
        [
            turnover_wide.select(
                pl.lit(f).alias("factor"),
                "date",
                pl.col(f"rank_autocorr|{f}").alias("rank_autocorr"),
                pl.col(f"top_turnover|{f}").alias("top_turnover"),
                pl.col(f"has_prev|{f}").alias("has_prev"),
            )
            for f in names
        ]
    ).filter(pl.col("has_prev"))
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

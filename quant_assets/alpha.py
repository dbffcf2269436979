"""The `alpha` group: factor values, neutral z-scores, HMM regime, rankings, diagnostics.

Lookback windows come from upstream partitions through `TimeWindowPartitionMapping`, so a
10-year backfill is one run that reads the price history once.
"""

from datetime import timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    asset,
)

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, history_input as _history, in_partition as _in_partition, partition_dates, weekly_partitions
from quant_assets.reporting import summary_section, text_table
from quant_lib.factors import (
    REQUIRED_LOOKBACK_DAYS,
    compute_factor_values,
    compute_rankings,
    factor_diagnostics,
    process_factors,
    to_markdown,
)
from quant_lib.factors.checks import ranking_coverage, regime_confidence, zscore_sanity
from quant_lib.regime import DynamicFactorWeights, regime_path
from quant_resources.settings import get_settings
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

REGIME_LOOKBACK_DAYS = 252
REGIME_HISTORY_DAYS = REGIME_LOOKBACK_DAYS + 30
"""The HMM refits monthly on 252 returns ending at the month's first trading day."""
DIAGNOSTICS_WINDOW_DAYS = 504

ALPHA = daily_asset("alpha")


@asset(
    **ALPHA,
    ins={
        "prices": _history("prices", REQUIRED_LOOKBACK_DAYS),
        "fundamentals": _history("fundamentals", REQUIRED_LOOKBACK_DAYS),
        "universe": AssetIn("universe"),
    },
    description="Raw factors per (date, ticker): VSM, BAB, QMJ, PEAD, accruals, IVOL, revisions, sentiment, DCF upside.",
)
def factor_values(context: AssetExecutionContext, prices: pl.DataFrame, fundamentals: pl.DataFrame, universe: pl.DataFrame):
    benchmark = get_settings().benchmark_ticker
    fundamentals_input = fundamentals if fundamentals.height else None
    result = compute_factor_values(prices, fundamentals_input, universe, benchmark_ticker=benchmark)
    values = _in_partition(result.values, context)
    for name, reason in result.dropped.items():
        context.log.warning(f"factor {name} dropped from the composite: {reason}")
    context.log.info(f"factor_values: {values.height} rows from {prices.height} price rows of history")
    return Output(
        values,
        metadata={
            "dropped_factors": MetadataValue.json(result.dropped),
            "factors_computed": [c for c in values.columns if c not in ("date", "ticker", "sector") and c not in result.dropped],
            "history_rows_read": prices.height,
        },
    )


@asset(
    **ALPHA,
    check_specs=check_specs("factor_scores", [("zscores_standardized", "Finite z-scores, mean 0 and std 1 per date.", True)]),
    description="Winsorized (1%/99%), cross-sectionally z-scored, sector-neutral factor scores z_<factor>.",
)
def factor_scores(context: AssetExecutionContext, factor_values: pl.DataFrame):
    scores = process_factors(factor_values)
    yield Output(scores, metadata={"dates": scores["date"].n_unique(), "tickers": scores["ticker"].n_unique()})
    yield from to_check_results([zscore_sanity(scores)])


@asset(
    **ALPHA,
    ins={"prices": _history("prices", REGIME_HISTORY_DAYS)},
    check_specs=check_specs("regime", [("regime_confidence", "HMM confidence >= 60% (warns).", False)]),
    description="Gaussian HMM (hmmlearn) on benchmark returns: Bull/Bear/Unknown, posteriors, confidence.",
)
def regime(context: AssetExecutionContext, prices: pl.DataFrame):
    benchmark = get_settings().benchmark_ticker
    first, last = partition_dates(context)
    bench = prices.filter(pl.col("ticker") == benchmark).select("date", "adj_close")
    dates = bench.filter(pl.col("date").is_between(first, last))["date"]
    path = regime_path(bench, dates, lookback=REGIME_LOOKBACK_DAYS)
    latest = path.tail(1).to_dicts()[0] if path.height else {}
    context.log.info(f"regime {first}..{last}: latest {latest}")
    yield Output(path, metadata={"latest_regime": str(latest.get("regime")), "latest_confidence": float(latest.get("confidence") or 0.0)})
    yield from to_check_results([regime_confidence(path)])


@asset(
    **ALPHA,
    ins={"factor_scores": AssetIn("factor_scores"), "regime": AssetIn("regime"), "universe": AssetIn("universe")},
    check_specs=check_specs("rankings", [("ranking_coverage", "At least 80% of the active universe is ranked each day.", True)]),
    description="Regime-weighted composite score, rank and factor breakdown (signals schema: ticker, date, score, rank, model_name, metadata_json).",
)
def rankings(context: AssetExecutionContext, factor_scores: pl.DataFrame, regime: pl.DataFrame, universe: pl.DataFrame):
    ranked = compute_rankings(factor_scores, regime.select("date", "regime"), DynamicFactorWeights())
    top = ranked.filter(pl.col("date") == ranked["date"].max()).head(10) if ranked.height else ranked
    yield Output(
        ranked,
        metadata={"top_10_latest": MetadataValue.md(to_markdown(top.select("rank", "ticker", "score", "regime")))},
    )
    yield from to_check_results([ranking_coverage(ranked, universe)])


@asset(
    partitions_def=weekly_partitions,
    pool=WAREHOUSE_POOL,
    io_manager_key="warehouse_io_manager",
    group_name="alpha",
    kinds={"duckdb", "polars"},
    deps=["factor_scores", "prices"],
    metadata={"partition_expr": "week"},
    description="Weekly alphalens-style diagnostics over the trailing two years: IC / rank IC with t-stats, quintile spreads, turnover, decay.",
)
def factor_diagnostics_report(context: AssetExecutionContext, warehouse: WarehouseResource):
    week_start, week_end = partition_dates(context)
    wh: Warehouse = warehouse.get()
    since = week_end - timedelta(days=int(DIAGNOSTICS_WINDOW_DAYS * 7 / 5))
    scores = wh.read("factor_scores", since, week_end + timedelta(days=1), read_only=False)
    prices = wh.read("prices", since, week_end + timedelta(days=1), columns=["date", "ticker", "adj_close"], read_only=False)
    tables = factor_diagnostics(scores, prices)
    summary = tables["ic_summary"].with_columns(pl.lit(week_start).alias("week"))
    return Output(
        summary,
        metadata={
            "ic_summary": MetadataValue.md(to_markdown(tables["ic_summary"])),
            "quantile_spread": MetadataValue.md(to_markdown(tables["quantile_spread"])),
            "turnover": MetadataValue.md(to_markdown(tables["turnover"])),
            "ic_decay": MetadataValue.md(to_markdown(tables["ic_decay"])),
            "window": f"{since} .. {week_end}",
        },
    )


@summary_section
def _alpha_summary(warehouse: Warehouse, latest) -> str:
    if not {"regime", "rankings"} <= set(warehouse.tables()):
        return ""
    day_after = latest + timedelta(days=1)
    regime_row = warehouse.read("regime", latest, day_after)
    ranked = warehouse.read("rankings", latest, day_after)
    if regime_row.is_empty() or ranked.is_empty():
        return f"Alpha: nothing for {latest}"
    r = regime_row.to_dicts()[0]
    top = ranked.sort("rank").head(10).select("rank", "ticker", "score", "vsm", "bab", "qmj", "pead", "sentiment")
    return (
        f"Regime on {latest}: {r['regime']} (confidence {r['confidence'] or 0:.1%}, "
        f"P(bull) {r['p_bull'] or 0:.2f}, P(bear) {r['p_bear'] or 0:.2f})\n"
        f"Top 10 of {ranked.height} ranked ({ranked['model_name'][0]}):\n" + text_table(top, "{:+.2f}")
    )


"""The `portfolio` group: candidate covariance, target weights, risk report, holdings, the daily
trade list and its VWAP execution schedule.

Every knob is in `PortfolioRunConfig` (the fields of `quant_lib.portfolio.construction.
PortfolioConfig`, same defaults), so the optimizer (hrp, black_litterman, kelly, mean_variance,
min_variance, risk_parity, equal_weight) is chosen at launch. Each asset has its own copy of
the config in the run config; `portfolio_run_config(optimizer="kelly")` builds one that sets
them all alike. `portfolio_targets` re-estimates the covariance itself on dates where the stored
`covariance` does not cover its candidates (a different top_n or lookback), so mismatched copies
cannot give wrong weights.

`holdings` is the previous day's book plus its fills (`quant_lib.portfolio.book`), starting from
`initial_cash`; the trade list trades only the difference, and `orders` / `fills`
(`quant_assets.trading`) send it through the `broker` resource.
"""

from datetime import timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    Config,
    MetadataValue,
    Output,
    RunConfig,
    asset,
)
from pydantic import Field

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, history_input as _history, in_partition as _in_partition, partition_dates
from quant_assets.reporting import summary_section, text_table
from quant_lib.data.calendar import trading_days
from quant_lib.factors import to_markdown
from quant_lib.factors.smoothing import smooth_scores, smoothing_window
from quant_lib.portfolio import METHODS
from quant_lib.portfolio.checks import long_only, max_position, sector_caps, turnover, var_limit, weights_sum
from quant_lib.portfolio.construction import (
    PortfolioConfig,
    build_targets,
    build_trade_lists,
    candidate_covariance,
    execution_schedules,
    portfolio_values,
)
from quant_lib.portfolio.book import project_book, traded_turnover
from quant_lib.portfolio.construction import CASH_TICKER
from quant_lib.risk.report import risk_report as compute_risk_report
from quant_resources.broker import BrokerResource
from quant_resources.settings import get_settings
from quant_resources.warehouse import Warehouse, WarehouseResource

_DEFAULTS = PortfolioConfig()
PRICE_HISTORY_DAYS = _DEFAULTS.lookback_days + 15
"""Weekday partitions of prices read before the run's first day: the covariance / VaR window of
`lookback_days` returns plus room for market holidays (a larger `lookback_days` in the run config
is cut to this history)."""
TURNOVER_HISTORY_DAYS = 21 + 5
"""Target partitions read before the run's first day for the 21-day turnover."""
SCORE_HISTORY_DAYS = 60
"""Ranking partitions read before the run's first day for the score EWM (`score_half_life` up to
12 sessions: its window is ceil(5 x half-life) sessions)."""
LIQUIDITY_HISTORY_DAYS = 20 + 5
"""Price partitions before the trade date for the 20-day average volume and volatility."""

PORTFOLIO = daily_asset("portfolio")


class PortfolioRunConfig(Config):
    """Run-time knobs of the portfolio group; defaults are `PortfolioConfig`'s."""

    optimizer: str = Field(_DEFAULTS.optimizer, description=f"Optimizer: one of {', '.join(METHODS)}.")
    top_n: int = Field(_DEFAULTS.top_n, description="Best-ranked names considered each day.")
    lookback_days: int = Field(_DEFAULTS.lookback_days, description="Trailing daily returns for the covariance.")
    min_history_days: int = Field(_DEFAULTS.min_history_days, description="Returns a candidate needs in the window.")
    cov_method: str = Field(_DEFAULTS.cov_method, description="sample, ledoit_wolf, ledoit_wolf_identity or ewma.")
    max_position: float = Field(_DEFAULTS.max_position, description="Largest weight of one name.")
    sector_cap: float | None = Field(_DEFAULTS.sector_cap, description="Largest weight of one sector (null: off).")
    target_vol: float | None = Field(_DEFAULTS.target_vol, description="Annualised volatility target (null: off).")
    vol_lookback: int = Field(_DEFAULTS.vol_lookback, description="Days of realised volatility for vol targeting.")
    min_leverage: float = Field(_DEFAULTS.min_leverage, description="Lowest invested fraction after vol targeting.")
    max_leverage: float = Field(_DEFAULTS.max_leverage, description="Highest invested fraction (1.0: cash account).")
    information_coefficient: float = Field(_DEFAULTS.information_coefficient, description="IC for alpha = IC x vol x score.")
    initial_cash: float = Field(_DEFAULTS.initial_cash, description="Cash of the starting book.")
    min_trade_value: float = Field(_DEFAULTS.min_trade_value, description="Smallest order value (exits excepted).")
    var_limit: float = Field(_DEFAULTS.var_limit, description="Daily parametric VaR limit, fraction of value (warns).")
    var_confidence: float = Field(_DEFAULTS.var_confidence, description="VaR confidence level.")
    max_turnover: float = Field(_DEFAULTS.max_turnover, description="21-day one-way turnover limit (warns).")
    rebalance_rate: float = Field(_DEFAULTS.rebalance_rate, description="Fraction of each gap to target traded per day (1: all of it).")
    hold_rank: int | None = Field(_DEFAULTS.hold_rank, description="Keep a held name dropped from the targets while it ranks within this many (null: off).")
    rebalance_band: float = Field(_DEFAULTS.rebalance_band, description="No-trade band: skip rebalances of held names worth less than this fraction of portfolio value.")
    score_half_life: float = Field(_DEFAULTS.score_half_life, description="Half-life (sessions) of the EWM of the ranking score the targets use (0: raw score; at most 12).")
    rebalance_frequency: str = Field(_DEFAULTS.rebalance_frequency, description="Trade on every session (daily) or the first session of each week / month (weekly, monthly).")
    use_meta_confidence: bool = Field(True, description="Scale each weight by meta_confidence's bet size in [0, 1] (on dates it scored: once a champion exists); the rest stays in cash.")

    def portfolio_config(self) -> PortfolioConfig:
        return PortfolioConfig(**{name: getattr(self, name) for name in PortfolioConfig.field_names()})


def scored_rankings(rankings: pl.DataFrame, context: AssetExecutionContext, settings: PortfolioConfig) -> pl.DataFrame:
    """The run's rankings with the score smoothed (`smooth_scores`) over the history read."""
    if smoothing_window(settings.score_half_life) > SCORE_HISTORY_DAYS:
        raise ValueError(f"score_half_life {settings.score_half_life} needs {smoothing_window(settings.score_half_life)} "
                         f"sessions of rankings; the portfolio assets read {SCORE_HISTORY_DAYS} (half-life at most 12)")
    return _in_partition(smooth_scores(rankings, settings.score_half_life), context)


CONFIGURED_ASSETS = ("covariance", "portfolio_targets", "risk_report", "holdings", "trade_list")


def portfolio_run_config(**overrides) -> RunConfig:
    """Run config giving every portfolio asset the same `PortfolioRunConfig(**overrides)`."""
    return RunConfig(ops={name: PortfolioRunConfig(**overrides) for name in CONFIGURED_ASSETS})


@asset(
    **PORTFOLIO,
    ins={"rankings": _history("rankings", SCORE_HISTORY_DAYS), "prices": _history("prices", PRICE_HISTORY_DAYS)},
    description="Daily covariance (date, ticker, other_ticker) of the top-N ranked names over the trailing lookback.",
)
def covariance(context: AssetExecutionContext, config: PortfolioRunConfig, rankings: pl.DataFrame, prices: pl.DataFrame):
    settings = config.portfolio_config()
    frame = candidate_covariance(scored_rankings(rankings, context, settings), prices, settings)
    context.log.info(f"covariance: {frame['date'].n_unique()} dates, {frame.height} entries ({settings.cov_method})")
    return Output(
        frame,
        metadata={"cov_method": settings.cov_method, "dates": frame["date"].n_unique(), "history_rows_read": prices.height},
    )


@asset(
    **PORTFOLIO,
    ins={
        "rankings": _history("rankings", SCORE_HISTORY_DAYS),
        "covariance": AssetIn("covariance"),
        "universe": AssetIn("universe"),
        "prices": _history("prices", PRICE_HISTORY_DAYS),
    },
    check_specs=check_specs(
        "portfolio_targets",
        [
            ("weights_sum", "Raw weights (capped allocation) sum to 1 on every date.", True),
            ("long_only", "No negative or missing weight.", True),
            ("max_position", "No weight above max_position.", True),
            ("sector_caps", "No sector above sector_cap.", True),
        ],
    ),
    deps=["meta_confidence"],
    description="Target weights: optimizer over the top-N ranked names, position / sector caps, vol targeting (rest in cash).",
)
def portfolio_targets(
    context: AssetExecutionContext,
    config: PortfolioRunConfig,
    rankings: pl.DataFrame,
    covariance: pl.DataFrame,
    universe: pl.DataFrame,
    prices: pl.DataFrame,
    warehouse: WarehouseResource,
):
    settings = config.portfolio_config()
    result = build_targets(scored_rankings(rankings, context, settings), prices, universe, settings, covariance)
    targets, meta_dropped = _meta_sized(context, config, result.targets, warehouse)
    for row in result.fallbacks.head(5).iter_rows(named=True):
        context.log.warning(f"{row['date']}: {row['fallback_reason']}")
    latest = targets.filter(pl.col("date") == targets["date"].max()) if targets.height else targets
    yield Output(
        targets,
        metadata={
            "model": settings.model_name,
            "meta_confidence_dropped_bets": meta_dropped,
            "fallbacks": result.fallbacks.height,
            "mean_leverage": float(result.diagnostics["leverage"].mean() or 0.0),
            "top_holdings_latest": MetadataValue.md(
                to_markdown(latest.sort("weight", descending=True).head(10).select("ticker", "sector", "weight", "raw_weight", "score"))
            ),
        },
    )
    yield from to_check_results([
        weights_sum(targets),
        long_only(targets),
        max_position(targets, settings.max_position),
        sector_caps(targets, settings.sector_cap),
    ])


def _meta_sized(context, config: PortfolioRunConfig, targets: pl.DataFrame, warehouse: WarehouseResource):
    """Target weights scaled by meta_confidence's bet sizes (run config `use_meta_confidence`)."""
    wh = warehouse.get()
    if not config.use_meta_confidence or not wh.has_table("meta_confidence"):
        return targets, 0
    from quant_lib.ml.sizing import apply_meta_confidence

    first, last = partition_dates(context)
    confidence = wh.read("meta_confidence", first, last + timedelta(days=1), read_only=False)
    sized, dropped, fallback = apply_meta_confidence(targets, confidence)
    if fallback:
        context.log.warning(f"meta_confidence sized every bet <= 0 on {fallback}: those days keep the optimizer's weights")
    return sized, dropped


@asset(
    **PORTFOLIO,
    ins={
        "portfolio_targets": AssetIn("portfolio_targets"),
        "prices": AssetIn("prices"),
        "rankings": _history("rankings", SCORE_HISTORY_DAYS),
        "universe": AssetIn("universe"),
    },
    description="The book before each day's trades: the previous day's holdings plus its fills (cash included).",
)
def holdings(
    context: AssetExecutionContext,
    config: PortfolioRunConfig,
    portfolio_targets: pl.DataFrame,
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    universe: pl.DataFrame,
    broker: BrokerResource,
):
    """Starts from the broker's book before the range (paper: its saved day; alpaca: the account
    now), then walks the range day by day (`project_book`): the same trade lists `trade_list`
    builds, filled by the paper model, so day D+1 starts from day D's fills; `orders` reconciles
    before sending."""
    first, last = partition_dates(context)
    settings = config.portfolio_config()
    book, _ = project_book(
        broker.book_before(first, settings.initial_cash), trading_days(first, last),
        portfolio_targets, prices, scored_rankings(rankings, context, settings), universe, settings,
    )
    cash = book.filter(pl.col("ticker") == CASH_TICKER)
    return Output(book, metadata={"days": cash.height, "positions": book.height - cash.height,
                                  "latest_cash": float(cash["shares"][-1]) if cash.height else 0.0})


@asset(
    **PORTFOLIO,
    ins={
        "portfolio_targets": _history("portfolio_targets", TURNOVER_HISTORY_DAYS),
        "covariance": AssetIn("covariance"),
        "holdings": _history("holdings", TURNOVER_HISTORY_DAYS),
        "trade_history": _history("trade_list", TURNOVER_HISTORY_DAYS),
        "prices": _history("prices", PRICE_HISTORY_DAYS),
    },
    check_specs=check_specs(
        "risk_report",
        [
            ("var_limit", "Daily parametric VaR(95%) within var_limit of value (warns).", False),
            ("turnover", "21-day one-way traded turnover of the book within max_turnover (warns).", False),
        ],
    ),
    description="Per held name: marginal / component VaR; per date: parametric and historical VaR / CVaR, limits, tail-hedge cost, turnover.",
)
def risk_report(
    context: AssetExecutionContext,
    config: PortfolioRunConfig,
    portfolio_targets: pl.DataFrame,
    covariance: pl.DataFrame,
    holdings: pl.DataFrame,
    trade_history: pl.DataFrame,
    prices: pl.DataFrame,
):
    """turnover_21d is the book's traded turnover (`traded_turnover`: trade lists over portfolio value)."""
    settings = config.portfolio_config()
    report = compute_risk_report(
        _in_partition(portfolio_targets, context), covariance, prices, get_settings().benchmark_ticker,
        portfolio_values(_in_partition(holdings, context), prices), settings.var_limit, settings.var_confidence,
        lookback_days=settings.lookback_days, cov_method=settings.cov_method, max_concentration=settings.max_position,
    )
    churn = _in_partition(traded_turnover(trade_history, portfolio_values(holdings, prices)), context)
    report = report.join(churn, on="date", how="left")
    latest = report.filter(pl.col("date") == report["date"].max()).row(0, named=True) if report.height else {}
    yield Output(
        report,
        metadata={
            "latest_var_pct": float(latest.get("portfolio_var_pct") or 0.0),
            "latest_limit_status": str(latest.get("limit_status")),
            "latest_hedge_cost_bps": float(latest.get("hedge_cost_bps") or 0.0),
        },
    )
    yield from to_check_results([var_limit(report, settings.var_limit), turnover(churn, settings.max_turnover)])


@asset(
    **PORTFOLIO,
    ins={
        "portfolio_targets": AssetIn("portfolio_targets"),
        "holdings": AssetIn("holdings"),
        "rankings": _history("rankings", SCORE_HISTORY_DAYS),
        "universe": AssetIn("universe"),
        "prices": AssetIn("prices"),
    },
    description="Orders from holdings to targets in whole shares at the close (seed dashboard trade fields).",
)
def trade_list(
    context: AssetExecutionContext,
    config: PortfolioRunConfig,
    portfolio_targets: pl.DataFrame,
    holdings: pl.DataFrame,
    rankings: pl.DataFrame,
    universe: pl.DataFrame,
    prices: pl.DataFrame,
):
    settings = config.portfolio_config()
    trades = build_trade_lists(portfolio_targets, holdings, prices, scored_rankings(rankings, context, settings), universe, settings)
    buys = trades.filter(pl.col("side") == "BUY")
    return Output(
        trades,
        metadata={"orders": trades.height, "buy_value": float(buys["value"].sum()),
                  "sell_value": float(trades["value"].sum() - buys["value"].sum())},
    )


@asset(
    **PORTFOLIO,
    ins={"trade_list": AssetIn("trade_list"), "prices": _history("prices", LIQUIDITY_HISTORY_DAYS)},
    description="VWAP slices (30-minute bins, U-shaped volume) of every order with square-root impact estimates.",
)
def execution_schedule(context: AssetExecutionContext, trade_list: pl.DataFrame, prices: pl.DataFrame):
    schedule = execution_schedules(trade_list, prices)
    impact = schedule["expected_impact_bps"].mean() if schedule.height else None
    return Output(schedule, metadata={"slices": schedule.height, "mean_impact_bps": float(impact or 0.0)})


@summary_section
def _portfolio_summary(warehouse: Warehouse, latest) -> str:
    if not {"portfolio_targets", "risk_report", "trade_list"} <= set(warehouse.tables()):
        return ""
    day_after = latest + timedelta(days=1)
    targets = warehouse.read("portfolio_targets", latest, day_after)
    report = warehouse.read("risk_report", latest, day_after)
    trades = warehouse.read("trade_list", latest, day_after)
    if targets.is_empty():
        return f"Portfolio: no targets for {latest}"
    head = targets.sort("weight", descending=True).head(10).select("ticker", "sector", "weight", "raw_weight", "score")
    lines = [
        f"Portfolio on {latest} ({targets['model_name'][0]}, method {targets['method_used'][0]}): "
        f"{targets.height} names, invested {targets['weight'].sum():.1%}, leverage {targets['leverage'][0]:.2f}",
        text_table(head, "{:.4f}"),
    ]
    if report.height:
        r = report.row(0, named=True)
        headline = pl.DataFrame({
            "var_pct": [r["portfolio_var_pct"]], "hist_var_pct": [r["historical_var_pct"]],
            "hist_cvar_pct": [r["historical_cvar_pct"]], "hedge_cost_bps": [r["hedge_cost_bps"]],
            "turnover_21d": [r.get("turnover_21d")], "limit_status": [r["limit_status"]],
        })
        lines += ["Risk:", text_table(headline, "{:.4f}")]
    lines += [
        f"Trade list: {trades.height} orders, buys {trades.filter(pl.col('side') == 'BUY')['value'].sum():,.0f}",
        text_table(
            trades.sort(["side", "value"], descending=[True, True]).head(10)
            .select("ticker", "side", "shares", "value", "conviction", "reason"),
            "{:,.0f}",
        ),
    ]
    return "\n".join(lines)

"""The `research` group: weekly backtests, purged walk-forward validation and the GA parameter
search, each tracked in the experiment store (run folder + MLflow run).

Every asset is partitioned by week (Saturday..Friday) and looks back `history_years` from the
week's Friday, reading `prices` / `rankings` (and `portfolio_targets` when present) through the
`warehouse` resource. Outputs carry a `week` column (the partition's Saturday).

Strategies (all trade at the next close, weekly rebalancing, commission + slippage + square-root
impact, `quant_lib.backtest.run_vectorized_backtest`):

- `ranking_top_n`: the `top_n` best `rankings.score` names of each day, inverse-volatility weights
  (`quant_lib.research.top_n_strategy_weights`); always run; the tear sheet's strategy unless
  the production book is available.
- `portfolio_targets`: the stored target weights of the portfolio group, run when that table covers
  at least `min_portfolio_days` dates of the window; it is then the tear sheet's strategy.
- `benchmark`: buy & hold of the benchmark ticker; `equal_weight`: every universe name at 1/N.

Deflated Sharpe (Bailey & Lopez de Prado 2014): every strategy configuration ever evaluated -
the backtested ones, each walk-forward candidate and each GA evaluation - is registered as a trial
of the experiment `STRATEGY_EXPERIMENT`; `backtests` reads `n_trials = count_trials(...)` and so
deflates by all of them (`backtests` depends on `walk_forward` and `ga_search`, which run first in
the weekly job). Baselines are not selected, so their deflated Sharpe uses one trial (= PSR(0)).

Factor attribution (tear sheet panel 6): cross-sectional regressions of daily returns on the
previous day's ranking z-scores give factor returns; times the portfolio's exposures they split
the strategy's daily return into market, per-factor and specific parts
(`quant_lib.research.attribution`).
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, Config, ConfigurableResource, Failure, MetadataValue, Output, asset
from pydantic import Field

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import partition_dates, weekly_partitions
from quant_assets.reporting import summary_section, text_table
from quant_lib.backtest import BacktestConfig, CostModel, deflated_sharpe_ratio
from quant_lib.data.quality import CheckOutcome
from quant_lib.factors import to_markdown
from quant_lib.research import GeneticOptimizer, StrategyFitnessConfig, make_strategy_fitness, prepare_strategy_data, weekly
from quant_lib.research.weekly import (
    PERIODS_PER_YEAR,
    backtest_candidates,
    backtest_row,
    evaluate_candidate,
    ga_best_run,
    research_tearsheet,
    walk_forward_top_n,
)
from quant_resources.atomic import atomic_write_bytes
from quant_resources.compute import ComputeBackend
from quant_resources.experiments import ExperimentRecord, ExperimentStore, ExperimentStoreResource
from quant_resources.settings import get_settings
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

STRATEGY_EXPERIMENT = "top_n_strategy"
"""Experiment whose trial count deflates the Sharpe ratio of the researched strategies."""
BASELINE_EXPERIMENT = "baselines"
WALK_FORWARD_EXPERIMENT = "walk_forward"
GA_EXPERIMENT = "ga_search"

RESEARCH = dict(
    partitions_def=weekly_partitions,
    pool=WAREHOUSE_POOL,
    io_manager_key="warehouse_io_manager",
    group_name="research",
    kinds={"duckdb", "polars", "mlflow"},
    metadata={"partition_expr": "week"},
)


class ReportsResource(ConfigurableResource):
    """Folder the tear sheets are written to (`settings.reports_dir`)."""

    directory: str

    def path(self, filename: str) -> Path:
        return Path(self.directory) / filename


class StrategyWindowConfig(Config):
    """History window and trading assumptions shared by the research assets."""

    history_years: float = Field(3.0, description="Years of history up to the week's Friday.")
    rebalance: str = Field("weekly", description="daily, weekly or monthly rebalancing.")
    execution_lag: int = Field(1, description="Trading days between the decision close and the trade.")
    commission_bps: float = Field(1.0, description="Commission, bps of traded value.")
    slippage_bps: float = Field(2.0, description="Slippage, bps of traded value.")
    impact_coefficient: float = Field(0.1, description="Square-root market impact coefficient.")
    initial_capital: float = Field(1_000_000.0, description="Starting equity.")
    vol_window: int = Field(63, description="Days of returns for the inverse-volatility weights.")

    def backtest_config(self) -> BacktestConfig:
        return BacktestConfig(
            initial_capital=self.initial_capital,
            rebalance=self.rebalance,
            execution_lag=self.execution_lag,
            costs=CostModel(self.commission_bps, self.slippage_bps, self.impact_coefficient),
            benchmark_ticker=get_settings().benchmark_ticker,
            periods_per_year=PERIODS_PER_YEAR,
        )

    def trading_assumptions(self) -> dict[str, Any]:
        return {
            "rebalance": self.rebalance,
            "execution_lag": self.execution_lag,
            "costs": {
                "commission_bps": self.commission_bps,
                "slippage_bps": self.slippage_bps,
                "impact_coefficient": self.impact_coefficient,
            },
        }


class BacktestRunConfig(StrategyWindowConfig):
    top_n: int = Field(20, description="Best-ranked names held by ranking_top_n.")
    use_portfolio_targets: bool = Field(True, description="Backtest the stored portfolio_targets when they cover the window.")
    min_portfolio_days: int = Field(126, description="Dates of portfolio_targets needed to backtest them.")
    use_meta_sizing: bool = Field(True, description="Also backtest ranking_top_n sized by meta_model's walk-forward bet sizes (when the week has them).")


class WalkForwardRunConfig(StrategyWindowConfig):
    top_n_grid: list[int] = Field([5, 10, 20, 40], description="Candidate top_n values of ranking_top_n.")
    n_splits: int = Field(4, description="Walk-forward test blocks.")
    min_train_fraction: float = Field(0.4, description="Share of the window the first fold trains on.")
    gap_days: int = Field(5, description="Trading days purged between train and test (one weekly holding period).")


class GASearchConfig(StrategyWindowConfig):
    """DEAP GA over the momentum top-N strategy; scale up with population_size / n_generations."""

    population_size: int = Field(12, description="Individuals per generation.")
    n_generations: int = Field(3, description="Generations after the initial population.")
    seed: int = Field(7, description="Seed of the GA (same seed and data give the same search).")
    objective: str = Field("cv_sharpe", description="sharpe, deflated_sharpe or cv_sharpe (mean Sharpe over purged folds).")
    n_splits: int = Field(5, description="Purged folds of the cv_sharpe objective.")
    embargo_pct: float = Field(0.01, description="Embargo of the purged folds, fraction of days.")
    lookback_min: int = 21
    lookback_max: int = 252
    top_n_min: int = 5
    top_n_max: int = 40
    vol_target_min: float = 0.05
    vol_target_max: float = 0.30
    fractional_kelly_min: float = 0.1
    fractional_kelly_max: float = 1.0

    def param_ranges(self) -> dict[str, tuple[float, float, type]]:
        return {
            "lookback": (self.lookback_min, self.lookback_max, int),
            "top_n": (self.top_n_min, self.top_n_max, int),
            "vol_target": (self.vol_target_min, self.vol_target_max, float),
            "fractional_kelly": (self.fractional_kelly_min, self.fractional_kelly_max, float),
        }


@dataclass(frozen=True)
class ResearchWindow:
    """What a research asset reads: prices from before `start` (signal history), rankings from
    `start`, the first scored day, to the week's Friday."""

    week_start: date
    week_end: date
    start: date
    prices: pl.DataFrame
    rankings: pl.DataFrame
    data_version: dict[str, Any]

    def prices_from_start(self) -> pl.DataFrame:
        return self.prices.filter(pl.col("date") >= self.start)


def _table_version(frame: pl.DataFrame) -> dict[str, Any]:
    if frame.is_empty():
        return {"rows": 0}
    return {"rows": frame.height, "first_date": frame["date"].min(), "last_date": frame["date"].max()}


def load_window(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    history_years: float,
    signal_history_days: int,
    with_rankings: bool = True,
) -> ResearchWindow:
    """Read the window of the run's week; `signal_history_days` trading days of prices come
    before the first scored day. Without rankings the window starts `history_years` back (later
    when the price history is shorter)."""
    if not history_years > 0:
        raise Failure(f"history_years must be > 0, got {history_years}")
    week_start, week_end = partition_dates(context)
    window_start = week_end - timedelta(days=round(365.25 * history_years))
    history_calendar_days = int(signal_history_days * 7 / 5) + 14
    day_after = week_end + timedelta(days=1)
    rankings = pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "score": pl.Float64})
    if with_rankings:
        rankings = warehouse.read("rankings", window_start, day_after, read_only=False)
        if rankings.is_empty():
            raise Failure(
                f"no rankings between {window_start} and {week_end}: materialize the daily graph over that span "
                "first (`make backtest` backfills it)"
            )
        start = rankings["date"].min()
    prices = warehouse.read(
        "prices", window_start - timedelta(days=history_calendar_days), day_after,
        columns=["date", "ticker", "adj_close", "volume"], read_only=False,
    )
    if prices.is_empty():
        raise Failure(f"no prices up to {week_end}: materialize `prices` first")
    if not with_rankings:
        calendar = prices["date"].unique().sort()
        earliest = calendar[min(signal_history_days, calendar.len() - 1)]
        start = max(window_start, earliest)
    if prices.filter(pl.col("date") >= start).select(pl.col("date").n_unique()).item() < 2 * PERIODS_PER_YEAR // 12:
        raise Failure(f"the window {start} .. {week_end} has under one month of prices: nothing to evaluate")
    data_version = {
        "partition": week_start.isoformat(),
        "window": [start.isoformat(), week_end.isoformat()],
        "prices": _table_version(prices),
    }
    if with_rankings:
        model = rankings["model_name"][0] if "model_name" in rankings.columns else None
        data_version["rankings"] = {**_table_version(rankings), "model_name": model}
    return ResearchWindow(week_start, week_end, start, prices, rankings, data_version)


def strategy_trial_config(signal: str, params: dict[str, Any], config: StrategyWindowConfig) -> dict[str, Any]:
    """The configuration registered as one trial of `STRATEGY_EXPERIMENT` (no dates: the same
    strategy evaluated on later data is the same trial)."""
    return weekly.strategy_trial_config(signal, params, config.trading_assumptions())


def _experiment_metadata(store: ExperimentStore, record: ExperimentRecord) -> dict[str, Any]:
    return {
        "experiment_run_id": record.run_id,
        "experiment_path": MetadataValue.path(str(record.path)),
        "mlflow_run_id": record.mlflow_run_id or "(mlflow disabled)",
        "mlflow_tracking_uri": store.mlflow_tracking_uri,
        "mlflow_store": MetadataValue.path(str(store.root_dir)),
        "git_sha": record.git_sha,
    }


def rng_isolated_map(map_fn: Callable[[Callable, list], list]) -> Callable[[Callable, list], list]:
    """`map_fn` that leaves the global `random` / numpy RNG states as it found them.

    DEAP draws from the global `random` module; a backend that touches it while evaluating (Ray's
    start-up does) would change the rest of the search, so the same seed would give different
    searches on different backends.
    """

    def isolated(fn: Callable, items: list) -> list:
        state, numpy_state = random.getstate(), np.random.get_state()
        try:
            return map_fn(fn, items)
        finally:
            random.setstate(state)
            np.random.set_state(numpy_state)

    return isolated


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _portfolio_weights(warehouse: Warehouse, window: ResearchWindow, config: BacktestRunConfig) -> pl.DataFrame | None:
    if not config.use_portfolio_targets or not warehouse.has_table("portfolio_targets"):
        return None
    targets = warehouse.read("portfolio_targets", window.start, window.week_end + timedelta(days=1), read_only=False)
    if targets.is_empty() or targets["date"].n_unique() < config.min_portfolio_days:
        return None
    return targets.select("date", "ticker", "weight", *(["model_name"] if "model_name" in targets.columns else [])).filter(
        pl.col("weight") != 0
    )


def _meta_sizes(warehouse: Warehouse, window: ResearchWindow, config: BacktestRunConfig) -> pl.DataFrame | None:
    """The week's walk-forward out-of-sample bet sizes of the meta-labeler (`meta_model`; not a
    declared dependency: meta_model's blocking promotion check must not stop the backtests, so
    `make backtest` materializes it first)."""
    if not config.use_meta_sizing or not warehouse.has_table("meta_model"):
        return None
    table = warehouse.read("meta_model", window.week_start, window.week_start + timedelta(days=1), date_column="week", read_only=False)
    sizes = table.drop_nulls("bet_size")
    return sizes.select("date", "ticker", "bet_size", "model_version") if sizes.height else None


def _backtest_data_version(window: ResearchWindow, book: pl.DataFrame | None, sizes: pl.DataFrame | None, start: date) -> dict[str, Any]:
    version = {**window.data_version, "window": [start.isoformat(), window.week_end.isoformat()]}
    if book is not None:
        version["portfolio_targets"] = {**_table_version(book), "model_name": book["model_name"][0] if "model_name" in book.columns else "portfolio_targets"}
    if sizes is not None:
        version["meta_model"] = {**_table_version(sizes), "model_version": int(sizes["model_version"][0])}
    return version


def _run_candidates(store: ExperimentStore, candidates: list, window: ResearchWindow, start: date, config: BacktestRunConfig, data_version: dict):
    """Record the trials, backtest every candidate and save each run (folder + MLflow); returns
    (table rows, results by name, records by name)."""
    n_trials = store.record_trials(STRATEGY_EXPERIMENT, [c.trial for c in candidates if c.trial is not None])
    prices, benchmark = window.prices.filter(pl.col("date") >= start), get_settings().benchmark_ticker
    rows, results, records = [], {}, {}
    for candidate in candidates:
        result, metrics = evaluate_candidate(candidate, prices, config.backtest_config(), n_trials)
        run_config = candidate.trial or {
            "strategy": candidate.name, "benchmark": benchmark, **config.trading_assumptions(),
            **({"rebalance": "buy_and_hold"} if candidate.buy_and_hold else {}),
        }  # fmt: skip
        record = store.save_experiment(
            STRATEGY_EXPERIMENT if candidate.trial is not None else BASELINE_EXPERIMENT, run_config, result.daily, result.trades,
            metrics, data_version, tags={"asset": "backtests", "strategy": candidate.name, "week": window.week_start.isoformat()},
        )  # fmt: skip
        results[candidate.name], records[candidate.name] = (result, metrics), record
        rows.append({**backtest_row(candidate.name, metrics, window.week_start, start, window.week_end),
                     "run_id": record.run_id, "mlflow_run_id": record.mlflow_run_id})  # fmt: skip
    return pl.DataFrame(rows), results, records


@asset(
    **RESEARCH,
    deps=["rankings", "prices", "portfolio_targets", "walk_forward", "ga_search"],
    check_specs=check_specs("backtests", [("metrics_finite", "Every headline metric of every strategy is finite.", True)]),
    description=(
        "Weekly backtest of the ranking top-N strategy, with and without meta-labeler sizing (and the portfolio_targets book "
        "when it covers the window) vs buy & hold benchmark and equal weight: metrics, deflated Sharpe over all trials, tear sheet, MLflow runs."
    ),
)
def backtests(
    context: AssetExecutionContext,
    config: BacktestRunConfig,
    warehouse: WarehouseResource,
    experiments: ExperimentStoreResource,
    reports: ReportsResource,
):
    wh, store = warehouse.get(), experiments.get()
    window = load_window(context, wh, config.history_years, config.vol_window + 5)
    book, sizes = _portfolio_weights(wh, window, config), _meta_sizes(wh, window, config)
    start = window.start if book is None else max(window.start, book["date"].min())
    data_version = _backtest_data_version(window, book, sizes, start)
    candidates = backtest_candidates(
        window.prices, window.rankings, book, sizes, start=start, benchmark=get_settings().benchmark_ticker, top_n=config.top_n,
        vol_window=config.vol_window, model_name=window.data_version["rankings"].get("model_name") or "rankings",
        trading_assumptions=config.trading_assumptions(),
    )  # fmt: skip
    table, results, records = _run_candidates(store, candidates, window, start, config, data_version)
    primary = "portfolio_targets" if book is not None else "ranking_top_n"
    html, factors = research_tearsheet(
        primary, results, window.rankings, window.prices.filter(pl.col("date") >= start),
        f"{primary} - week of {window.week_start} ({start} .. {window.week_end})", f"{start} .. {window.week_end}",
    )  # fmt: skip
    report_path = reports.path(f"tearsheet_{window.week_start.isoformat()}.html")
    atomic_write_bytes(report_path, html.encode("utf-8"))
    table = table.with_columns(pl.lit(str(report_path)).alias("report_path"))
    yield Output(table, metadata={
        "primary_strategy": primary, "tearsheet": MetadataValue.path(str(report_path)),
        "tearsheet_url": MetadataValue.url(report_path.resolve().as_uri()), "n_trials": int(results[primary][1]["n_trials"]),
        "strategies": MetadataValue.md(to_markdown(table.select(
            "strategy", "sharpe", "deflated_sharpe", "annualized_return", "max_drawdown", "volatility", "run_id", "mlflow_run_id"))),
        "attribution_factors": factors, "window": f"{start} .. {window.week_end}",
        "data_version": MetadataValue.json(_jsonable(data_version)), **_experiment_metadata(store, records[primary]),
    })  # fmt: skip
    yield from to_check_results([_metrics_finite(table)])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _metrics_finite(table: pl.DataFrame) -> CheckOutcome:
    columns = ["sharpe", "annualized_return", "max_drawdown", "deflated_sharpe", "total_return", "volatility"]
    bad = table.filter(pl.any_horizontal(~pl.col(c).is_finite() | pl.col(c).is_null() for c in columns))
    return CheckOutcome(
        name="metrics_finite",
        passed=bad.is_empty(),
        message="all metrics finite" if bad.is_empty() else f"non-finite metrics for {bad['strategy'].to_list()}",
        details={"strategies": table.height},
    )


def _folds_disjoint(folds: pl.DataFrame, gap: int) -> CheckOutcome:
    purged = (folds["train_end"] + gap < folds["test_start"]).all()
    ordered = (folds["test_start"].slice(1) > folds["test_end"].slice(0, folds.height - 1)).all()
    passed = bool(purged and ordered)
    return CheckOutcome(
        name="folds_disjoint",
        passed=passed,
        message=(
            f"{folds.height} folds: every training block ends more than {gap} days before its test block; test blocks do not overlap"
            if passed else "a training block reaches into its test block (or test blocks overlap)"
        ),
        details={"folds": folds.height, "gap_days": gap},
    )


@asset(
    **RESEARCH,
    deps=["rankings", "prices"],
    check_specs=check_specs("walk_forward", [("folds_disjoint", "Train blocks end gap_days before their test block; test blocks are disjoint.", True)]),
    description="Purged walk-forward choice of ranking_top_n's top_n: per fold the best in-sample Sharpe and its out-of-sample metrics.",
)
def walk_forward(
    context: AssetExecutionContext,
    config: WalkForwardRunConfig,
    warehouse: WarehouseResource,
    experiments: ExperimentStoreResource,
    compute: ComputeBackend,
):
    if not config.top_n_grid or min(config.top_n_grid) < 1:
        raise Failure(f"top_n_grid must list positive integers, got {config.top_n_grid}")
    store = experiments.get()
    window = load_window(context, warehouse.get(), config.history_years, config.vol_window + 5)
    signal = f"rankings:{window.data_version['rankings'].get('model_name') or 'rankings'}"
    data = prepare_strategy_data(window.prices, window.rankings.select("date", "ticker", "score"), (get_settings().benchmark_ticker,))
    fitness = StrategyFitnessConfig(backtest=config.backtest_config(), start_date=window.start, vol_window=config.vol_window, periods_per_year=PERIODS_PER_YEAR)
    grid = sorted(set(config.top_n_grid))
    try:
        result = walk_forward_top_n(data, fitness, grid, config.n_splits, config.min_train_fraction, config.gap_days, config.initial_capital, compute.map)
    except ValueError as error:
        raise Failure(str(error)) from error
    trials = [strategy_trial_config(signal, {"top_n": n, "vol_window": config.vol_window}, config) for n in grid]
    n_trials = store.record_trials(STRATEGY_EXPERIMENT, trials)
    oos_metrics = {**result.oos_metrics, "deflated_sharpe": deflated_sharpe_ratio(result.oos_daily["returns"].to_numpy(), n_trials, periods_per_year=PERIODS_PER_YEAR)}
    record = store.save_experiment(
        WALK_FORWARD_EXPERIMENT,
        {"strategy": signal, "top_n_grid": grid, "n_splits": config.n_splits, "min_train_fraction": config.min_train_fraction,
         "gap_days": config.gap_days, "vol_window": config.vol_window, **config.trading_assumptions()},
        result.oos_daily, pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "trade_weight": pl.Float64}),
        oos_metrics, window.data_version, tags={"asset": "walk_forward", "week": window.week_start.isoformat()},
    )  # fmt: skip
    table = result.folds.with_columns(pl.lit(window.week_start).alias("week"), pl.lit(record.run_id).alias("run_id"), pl.lit(record.mlflow_run_id).alias("mlflow_run_id"))
    yield Output(table, metadata={
        "folds": MetadataValue.md(to_markdown(table.select(
            "fold", "train_start_date", "test_start_date", "test_end_date", "param_top_n", "train_score", "test_sharpe_ratio"))),
        "oos_sharpe": float(oos_metrics["sharpe_ratio"]), "oos_deflated_sharpe": float(oos_metrics["deflated_sharpe"]),
        "oos_total_return": float(oos_metrics["total_return"]), "n_trials": n_trials, **_experiment_metadata(store, record),
    })  # fmt: skip
    yield from to_check_results([_folds_disjoint(result.folds, config.gap_days)])


def _ga_config(config: GASearchConfig) -> dict[str, Any]:
    return {
        "strategy": "momentum", "objective": config.objective, "population_size": config.population_size,
        "n_generations": config.n_generations, "seed": config.seed, "n_splits": config.n_splits,
        "param_ranges": {k: [lo, hi, kind.__name__] for k, (lo, hi, kind) in config.param_ranges().items()},
        "vol_window": config.vol_window, **config.trading_assumptions(),
    }  # fmt: skip


@asset(
    **RESEARCH,
    deps=["prices"],
    check_specs=check_specs("ga_search", [("best_fitness_finite", "The GA found a parameter set with a finite fitness.", False)]),
    description=(
        "DEAP genetic search of the momentum top-N strategy (lookback, top_n, vol_target, fractional_kelly) fanned out "
        "through the compute resource; every evaluation is recorded as a trial for the deflated Sharpe."
    ),
)
def ga_search(
    context: AssetExecutionContext,
    config: GASearchConfig,
    warehouse: WarehouseResource,
    experiments: ExperimentStoreResource,
    compute: ComputeBackend,
):
    store = experiments.get()
    window = load_window(context, warehouse.get(), config.history_years, config.lookback_max + 2 * config.vol_window + 5, with_rankings=False)
    result = _run_genetic_search(context, config, window, store.count_trials(STRATEGY_EXPERIMENT), compute)
    evaluations = result.all_evaluations.sort("fitness", descending=True, nulls_last=True)
    n_trials = store.record_trials(STRATEGY_EXPERIMENT, [
        strategy_trial_config("momentum", {**params, "skip": 0, "vol_window": config.vol_window}, config)
        for params in evaluations.select(*config.param_ranges()).iter_rows(named=True)
    ])  # fmt: skip
    best = {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in result.best_params.items()}
    best_run, metrics = ga_best_run(window.prices, best, benchmark=get_settings().benchmark_ticker, vol_window=config.vol_window,
                                    start=window.start, config=config.backtest_config(), n_trials=n_trials)  # fmt: skip
    metrics = {**metrics, "best_fitness": float(result.best_fitness), "n_evaluations": float(result.n_evaluations)}
    record = store.save_experiment(GA_EXPERIMENT, _ga_config(config), best_run.daily, best_run.trades, metrics, window.data_version,
                                   tags={"asset": "ga_search", "week": window.week_start.isoformat(), "best_params": str(best)})  # fmt: skip
    yield Output(_ga_table(window, best, config, result, n_trials, metrics, compute.backend, record), metadata={
        "best_params": MetadataValue.json(best), "best_fitness": _finite(result.best_fitness) or 0.0,
        "n_evaluations": result.n_evaluations, "n_trials": n_trials, "evaluations": MetadataValue.md(to_markdown(evaluations)),
        "generations": MetadataValue.md(to_markdown(result.history)), **_experiment_metadata(store, record),
    })  # fmt: skip
    finite = math.isfinite(result.best_fitness)
    yield from to_check_results([CheckOutcome(
        name="best_fitness_finite", passed=finite, blocking=False,
        message=f"best {config.objective} {result.best_fitness:.4f} at {best}" if finite else "no evaluation had a finite fitness",
    )])  # fmt: skip


def _run_genetic_search(context: AssetExecutionContext, config: GASearchConfig, window: ResearchWindow,
                        trials_so_far: int, compute: ComputeBackend):
    """The DEAP search of the momentum strategy's parameters, scored by purged-CV fitness and
    evaluated through the `compute` backend."""
    fitness = StrategyFitnessConfig(
        objective=config.objective, backtest=config.backtest_config(), n_trials=max(1, trials_so_far),
        n_splits=config.n_splits, embargo_pct=config.embargo_pct, start_date=window.start, vol_window=config.vol_window,
        periods_per_year=PERIODS_PER_YEAR,
    )  # fmt: skip
    optimizer = GeneticOptimizer(
        make_strategy_fitness(window.prices, None, fitness), config.param_ranges(), population_size=config.population_size,
        n_generations=config.n_generations, seed=config.seed, map_fn=rng_isolated_map(compute.map),
    )  # fmt: skip
    context.log.info(f"ga_search: population {config.population_size} x {config.n_generations} generations on "
                     f"{compute.backend} ({compute.max_workers} workers), window {window.start} .. {window.week_end}")  # fmt: skip
    return optimizer.run()


def _ga_table(window: ResearchWindow, best: dict, config: GASearchConfig, result, n_trials: int, metrics: dict, backend: str, record) -> pl.DataFrame:
    return pl.DataFrame([{
        "week": window.week_start, **best, "objective": config.objective, "best_fitness": _finite(result.best_fitness),
        "n_evaluations": result.n_evaluations, "n_trials": n_trials, "sharpe": metrics["sharpe_ratio"],
        "deflated_sharpe": metrics["deflated_sharpe"], "annualized_return": metrics["annualized_return"],
        "max_drawdown": metrics["max_drawdown"], "backend": backend, "run_id": record.run_id, "mlflow_run_id": record.mlflow_run_id,
    }])  # fmt: skip


@summary_section
def research_summary(warehouse: Warehouse, latest) -> str:
    if "backtests" not in warehouse.tables():
        return ""
    table = warehouse.read("backtests", date_column="week")
    if table.is_empty():
        return ""
    week = table["week"].max()
    rows = table.filter(pl.col("week") == week)
    lines = [
        f"Research, week of {week} ({rows['start_date'][0]} .. {rows['end_date'][0]}, {rows['n_trials'].max()} trials):",
        text_table(rows.select("strategy", "sharpe", "deflated_sharpe", "annualized_return", "max_drawdown", "volatility")),
    ]
    if "ga_search" in warehouse.tables():
        ga = warehouse.read("ga_search", date_column="week").filter(pl.col("week") == week)
        if ga.height:
            g = ga.row(0, named=True)
            lines.append(
                f"GA best ({g['objective']} {g['best_fitness'] or float('nan'):.3f}, {g['n_evaluations']} evaluations): "
                f"lookback {g['lookback']}, top_n {g['top_n']}, vol_target {g['vol_target']:.3f}, "
                f"fractional_kelly {g['fractional_kelly']:.3f}"
            )
    lines.append(f"Tear sheet: {rows['report_path'][0]}")
    return "\n".join(lines)

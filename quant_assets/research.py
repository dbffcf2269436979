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

import functools
import math
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from quant_lib.backtest import (
    BacktestConfig,
    CostModel,
    WalkForwardSplitter,
    compute_metrics,
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    run_vectorized_backtest,
    sharpe_ratio,
    walk_forward_optimize,
)
from quant_lib.data.quality import CheckOutcome
from quant_lib.factors import to_markdown
from quant_lib.reporting import build_tearsheet
from quant_lib.research import (
    GeneticOptimizer,
    StrategyFitnessConfig,
    make_strategy_fitness,
    prepare_strategy_data,
    strategy_returns,
    top_n_strategy_weights,
)
from quant_lib.research.attribution import factor_attribution
from quant_resources.compute import ComputeBackend
from quant_resources.experiments import ExperimentRecord, ExperimentStore, ExperimentStoreResource
from quant_resources.settings import get_settings
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

STRATEGY_EXPERIMENT = "top_n_strategy"
"""Experiment whose trial count deflates the Sharpe ratio of the researched strategies."""
BASELINE_EXPERIMENT = "baselines"
WALK_FORWARD_EXPERIMENT = "walk_forward"
GA_EXPERIMENT = "ga_search"
RANKING_FACTORS = ("vsm", "bab", "qmj", "upside", "pead", "sentiment")
PERIODS_PER_YEAR = 252

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
    return {"signal": signal, "params": dict(sorted(params.items())), **config.trading_assumptions()}


def _experiment_metadata(store: ExperimentStore, record: ExperimentRecord) -> dict[str, Any]:
    return {
        "experiment_run_id": record.run_id,
        "experiment_path": MetadataValue.path(str(record.path)),
        "mlflow_run_id": record.mlflow_run_id or "(mlflow disabled)",
        "mlflow_tracking_uri": store.mlflow_tracking_uri,
        "mlflow_store": MetadataValue.path(str(store.root_dir)),
        "git_sha": record.git_sha,
    }


def write_text_atomically(path: Path, text: str) -> None:
    """Write a temporary file in the target folder, fsync it and rename it over `path`: readers
    see the old or the new file, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def _equal_weights(prices: pl.DataFrame, benchmark: str) -> pl.DataFrame:
    universe = prices.filter(pl.col("ticker") != benchmark)
    return universe.select("date", "ticker", (1.0 / pl.len().over("date")).alias("weight"))


def _portfolio_weights(warehouse: Warehouse, window: ResearchWindow, config: BacktestRunConfig) -> pl.DataFrame | None:
    if not config.use_portfolio_targets or not warehouse.has_table("portfolio_targets"):
        return None
    targets = warehouse.read("portfolio_targets", window.start, window.week_end + timedelta(days=1), read_only=False)
    if targets.is_empty() or targets["date"].n_unique() < config.min_portfolio_days:
        return None
    return targets.select("date", "ticker", "weight", *(["model_name"] if "model_name" in targets.columns else [])).filter(
        pl.col("weight") != 0
    )


def _available_factors(rankings: pl.DataFrame) -> list[str]:
    return [f for f in RANKING_FACTORS if f in rankings.columns and rankings[f].null_count() < rankings.height]


@asset(
    **RESEARCH,
    deps=["rankings", "prices", "portfolio_targets", "walk_forward", "ga_search"],
    check_specs=check_specs("backtests", [("metrics_finite", "Every headline metric of every strategy is finite.", True)]),
    description=(
        "Weekly backtest of the ranking top-N strategy (and the portfolio_targets book when it covers the window) "
        "vs buy & hold benchmark and equal weight: metrics, deflated Sharpe over all trials, tear sheet, MLflow runs."
    ),
)
def backtests(
    context: AssetExecutionContext,
    config: BacktestRunConfig,
    warehouse: WarehouseResource,
    experiments: ExperimentStoreResource,
    reports: ReportsResource,
):
    wh = warehouse.get()
    store = experiments.get()
    window = load_window(context, wh, config.history_years, config.vol_window + 5)
    benchmark = get_settings().benchmark_ticker
    backtest_config = config.backtest_config()
    model_name = window.data_version["rankings"].get("model_name") or "rankings"
    book = _portfolio_weights(wh, window, config)
    start = window.start if book is None else max(window.start, book["date"].min())
    data_version = {**window.data_version, "window": [start.isoformat(), window.week_end.isoformat()]}
    prices = window.prices.filter(pl.col("date") >= start)

    ranked = top_n_strategy_weights(
        window.prices, window.rankings.select("date", "ticker", "score"), exclude_tickers=(benchmark,),
        top_n=config.top_n, vol_window=config.vol_window,
    ).filter(pl.col("date") >= start)
    candidates: dict[str, tuple[pl.DataFrame, dict[str, Any] | None]] = {
        "ranking_top_n": (
            ranked,
            strategy_trial_config(f"rankings:{model_name}", {"top_n": config.top_n, "vol_window": config.vol_window}, config),
        ),
    }
    if book is not None:
        book_model = book["model_name"][0] if "model_name" in book.columns else "portfolio_targets"
        data_version["portfolio_targets"] = {**_table_version(book), "model_name": book_model}
        candidates["portfolio_targets"] = (
            book.select("date", "ticker", "weight"), strategy_trial_config(f"portfolio_targets:{book_model}", {}, config),
        )
    if prices.filter(pl.col("ticker") == benchmark).height:
        candidates["benchmark"] = (pl.DataFrame({"date": [start], "ticker": [benchmark], "weight": [1.0]}), None)
    else:
        context.log.warning(f"benchmark {benchmark} has no prices in the window: no benchmark row")
    candidates["equal_weight"] = (_equal_weights(prices, benchmark), None)
    primary = "portfolio_targets" if book is not None else "ranking_top_n"

    research_trials = store.record_trials(STRATEGY_EXPERIMENT, [t for _, t in candidates.values() if t is not None])
    rows, results, records = [], {}, {}
    for name, (weights, trial) in candidates.items():
        # One target row traded at the first possible close and then held (daily rebalancing of a
        # fully invested single name trades nothing more); the others wait for the weekly rebalance.
        engine_config = replace(backtest_config, rebalance="daily") if name == "benchmark" else backtest_config
        result = run_vectorized_backtest(weights, prices, engine_config)
        returns = result.daily["returns"].to_numpy()
        n_trials = research_trials if trial is not None else 1
        metrics = {
            **result.metrics,
            "deflated_sharpe": deflated_sharpe_ratio(returns, n_trials, periods_per_year=PERIODS_PER_YEAR),
            "probabilistic_sharpe": probabilistic_sharpe_ratio(returns, 0.0, PERIODS_PER_YEAR),
            "n_trials": float(n_trials),
        }
        run_config = trial or {
            "strategy": name, "benchmark": benchmark, **config.trading_assumptions(),
            **({"rebalance": "buy_and_hold"} if name == "benchmark" else {}),
        }
        record = store.save_experiment(
            STRATEGY_EXPERIMENT if trial is not None else BASELINE_EXPERIMENT,
            run_config,
            result.daily,
            result.trades,
            metrics,
            data_version,
            tags={"asset": "backtests", "strategy": name, "week": window.week_start.isoformat()},
        )
        results[name], records[name] = (result, metrics), record
        rows.append({
            "strategy": name,
            "week": window.week_start,
            "start_date": start,
            "end_date": window.week_end,
            "sharpe": metrics["sharpe_ratio"],
            "annualized_return": metrics["annualized_return"],
            "max_drawdown": metrics["max_drawdown"],
            "deflated_sharpe": metrics["deflated_sharpe"],
            "probabilistic_sharpe": metrics["probabilistic_sharpe"],
            "n_trials": n_trials,
            "total_return": metrics["total_return"],
            "volatility": metrics["volatility"],
            "sortino": metrics["sortino_ratio"],
            "annual_turnover": metrics["annual_turnover"],
            "cost_drag": metrics["cost_drag"],
            "run_id": record.run_id,
            "mlflow_run_id": record.mlflow_run_id,
        })

    primary_result, primary_metrics = results[primary]
    factors = _available_factors(window.rankings)
    attribution = None
    if factors:
        attribution = factor_attribution(
            primary_result.positions, window.rankings.select("date", "ticker", *factors), prices,
            primary_result.daily.select("date", "returns"), factors,
        )
    report_path = reports.path(f"tearsheet_{window.week_start.isoformat()}.html")
    headline = {
        "strategy": primary,
        "window": f"{start} .. {window.week_end}",
        **{key: primary_metrics[key] for key in (
            "total_return", "annualized_return", "volatility", "sharpe_ratio", "deflated_sharpe",
            "probabilistic_sharpe", "n_trials", "sortino_ratio", "calmar_ratio", "max_drawdown", "alpha", "beta",
            "information_ratio", "annual_turnover", "cost_drag", "total_costs",
        )},
        **{f"{name}_sharpe": results[name][1]["sharpe_ratio"] for name in results if name != primary},
        **{f"{name}_annualized_return": results[name][1]["annualized_return"] for name in results if name != primary},
    }
    html = build_tearsheet(
        primary_result.daily, attribution, f"{primary} - week of {window.week_start} ({start} .. {window.week_end})", headline,
    )
    write_text_atomically(report_path, html)

    table = pl.DataFrame(rows).with_columns(pl.lit(str(report_path)).alias("report_path"))
    outcome = _metrics_finite(table)
    yield Output(
        table,
        metadata={
            "primary_strategy": primary,
            "tearsheet": MetadataValue.path(str(report_path)),
            "tearsheet_url": MetadataValue.url(report_path.resolve().as_uri()),
            "n_trials": int(primary_metrics["n_trials"]),
            "strategies": MetadataValue.md(to_markdown(table.select(
                "strategy", "sharpe", "deflated_sharpe", "annualized_return", "max_drawdown", "volatility", "run_id",
                "mlflow_run_id",
            ))),
            "attribution_factors": factors,
            "window": f"{start} .. {window.week_end}",
            "data_version": MetadataValue.json(_jsonable(data_version)),
            **_experiment_metadata(store, records[primary]),
        },
    )
    yield from to_check_results([outcome])


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


def _fold_metrics(returns: np.ndarray) -> dict[str, float]:
    equity = np.cumprod(1.0 + returns)
    metrics = compute_metrics(equity, None, 1.0, PERIODS_PER_YEAR)
    return {key: metrics[key] for key in ("sharpe_ratio", "total_return", "annualized_return", "volatility", "max_drawdown")}


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
    benchmark = get_settings().benchmark_ticker
    model_name = window.data_version["rankings"].get("model_name") or "rankings"
    data = prepare_strategy_data(window.prices, window.rankings.select("date", "ticker", "score"), (benchmark,))
    fitness_config = StrategyFitnessConfig(
        backtest=config.backtest_config(), start_date=window.start, vol_window=config.vol_window,
        periods_per_year=PERIODS_PER_YEAR,
    )
    grid = sorted(set(config.top_n_grid))
    candidates = [{"top_n": n} for n in grid]
    dailies = compute.map(functools.partial(strategy_returns, prices=data, scores=None, config=fitness_config), candidates)
    dates = dailies[0]["date"]
    returns = np.column_stack([d["returns"].fill_null(0.0).to_numpy() for d in dailies])
    column = {n: k for k, n in enumerate(grid)}

    n_days = returns.shape[0]
    train_min = max(PERIODS_PER_YEAR // 12, math.ceil(config.min_train_fraction * n_days))
    test_size = (n_days - train_min - config.gap_days) // config.n_splits
    if test_size < 5:
        raise Failure(
            f"{n_days} days cannot hold {config.n_splits} test blocks after {train_min} training days and a "
            f"{config.gap_days}-day gap: lower n_splits / min_train_fraction or raise history_years"
        )
    splitter = WalkForwardSplitter(config.n_splits, train_min, test_size, gap=config.gap_days)
    folds = walk_forward_optimize(
        candidates,
        evaluate=lambda params, index: sharpe_ratio(returns[index, column[params["top_n"]]], PERIODS_PER_YEAR),
        test_eval=lambda params, index: _fold_metrics(returns[index, column[params["top_n"]]]),
        splitter=splitter,
        n_samples=n_days,
    )
    outcome = _folds_disjoint(folds, config.gap_days)
    out_of_sample = np.concatenate([
        returns[row["test_start"] : row["test_end"] + 1, column[row["param_top_n"]]] for row in folds.iter_rows(named=True)
    ])
    oos_dates = pl.concat([dates.slice(row["test_start"], row["n_test"]) for row in folds.iter_rows(named=True)])
    oos_daily = pl.DataFrame({
        "date": oos_dates, "returns": out_of_sample,
        "equity": config.initial_capital * np.cumprod(1.0 + out_of_sample),
    })
    oos_metrics = compute_metrics(oos_daily["equity"].to_numpy(), None, config.initial_capital, PERIODS_PER_YEAR)
    trials = [
        strategy_trial_config(f"rankings:{model_name}", {"top_n": n, "vol_window": config.vol_window}, config) for n in grid
    ]
    n_trials = store.record_trials(STRATEGY_EXPERIMENT, trials)
    oos_metrics["deflated_sharpe"] = deflated_sharpe_ratio(out_of_sample, n_trials, periods_per_year=PERIODS_PER_YEAR)
    record = store.save_experiment(
        WALK_FORWARD_EXPERIMENT,
        {"strategy": f"rankings:{model_name}", "top_n_grid": grid, "n_splits": config.n_splits,
         "min_train_fraction": config.min_train_fraction, "gap_days": config.gap_days, "vol_window": config.vol_window,
         **config.trading_assumptions()},
        oos_daily,
        pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "trade_weight": pl.Float64}),
        oos_metrics,
        window.data_version,
        tags={"asset": "walk_forward", "week": window.week_start.isoformat()},
    )

    table = folds.with_columns(
        *[dates.gather(folds[name]).alias(f"{name}_date") for name in ("train_start", "train_end", "test_start", "test_end")],
        pl.lit(window.week_start).alias("week"),
        pl.lit(record.run_id).alias("run_id"),
        pl.lit(record.mlflow_run_id).alias("mlflow_run_id"),
    )
    yield Output(
        table,
        metadata={
            "folds": MetadataValue.md(to_markdown(table.select(
                "fold", "train_start_date", "test_start_date", "test_end_date", "param_top_n", "train_score", "test_sharpe_ratio",
            ))),
            "oos_sharpe": float(oos_metrics["sharpe_ratio"]),
            "oos_deflated_sharpe": float(oos_metrics["deflated_sharpe"]),
            "oos_total_return": float(oos_metrics["total_return"]),
            "n_trials": n_trials,
            **_experiment_metadata(store, record),
        },
    )
    yield from to_check_results([outcome])


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
    history = config.lookback_max + 2 * config.vol_window + 5
    window = load_window(context, warehouse.get(), config.history_years, history, with_rankings=False)
    benchmark = get_settings().benchmark_ticker
    backtest_config = config.backtest_config()
    fitness_config = StrategyFitnessConfig(
        objective=config.objective, backtest=backtest_config, n_trials=max(1, store.count_trials(STRATEGY_EXPERIMENT)),
        n_splits=config.n_splits, embargo_pct=config.embargo_pct, start_date=window.start,
        vol_window=config.vol_window, periods_per_year=PERIODS_PER_YEAR,
    )
    fitness = make_strategy_fitness(window.prices, None, fitness_config)
    optimizer = GeneticOptimizer(
        fitness, config.param_ranges(), population_size=config.population_size,
        n_generations=config.n_generations, seed=config.seed, map_fn=rng_isolated_map(compute.map),
    )
    context.log.info(
        f"ga_search: population {config.population_size} x {config.n_generations} generations on "
        f"{compute.backend} ({compute.max_workers} workers), window {window.start} .. {window.week_end}"
    )
    result = optimizer.run()
    evaluations = result.all_evaluations.sort("fitness", descending=True, nulls_last=True)
    n_trials = store.record_trials(
        STRATEGY_EXPERIMENT,
        [
            strategy_trial_config("momentum", {**params, "skip": 0, "vol_window": config.vol_window}, config)
            for params in evaluations.select(*config.param_ranges()).iter_rows(named=True)
        ],
    )

    best = {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in result.best_params.items()}
    weights = top_n_strategy_weights(
        window.prices, None, exclude_tickers=(benchmark,), vol_window=config.vol_window, **best,
    ).filter(pl.col("date") >= window.start)
    best_run = run_vectorized_backtest(weights, window.prices_from_start(), backtest_config)
    metrics = {
        **best_run.metrics,
        "best_fitness": float(result.best_fitness),
        "n_evaluations": float(result.n_evaluations),
        "n_trials": float(n_trials),
        "deflated_sharpe": deflated_sharpe_ratio(best_run.daily["returns"].to_numpy(), n_trials, periods_per_year=PERIODS_PER_YEAR),
    }
    record = store.save_experiment(
        GA_EXPERIMENT,
        {"strategy": "momentum", "objective": config.objective, "population_size": config.population_size,
         "n_generations": config.n_generations, "seed": config.seed, "n_splits": config.n_splits,
         "param_ranges": {k: [lo, hi, kind.__name__] for k, (lo, hi, kind) in config.param_ranges().items()},
         "vol_window": config.vol_window, **config.trading_assumptions()},
        best_run.daily,
        best_run.trades,
        metrics,
        window.data_version,
        tags={"asset": "ga_search", "week": window.week_start.isoformat(), "best_params": str(best)},
    )
    table = pl.DataFrame([{
        "week": window.week_start,
        **best,
        "objective": config.objective,
        "best_fitness": _finite(result.best_fitness),
        "n_evaluations": result.n_evaluations,
        "n_trials": n_trials,
        "sharpe": metrics["sharpe_ratio"],
        "deflated_sharpe": metrics["deflated_sharpe"],
        "annualized_return": metrics["annualized_return"],
        "max_drawdown": metrics["max_drawdown"],
        "backend": compute.backend,
        "run_id": record.run_id,
        "mlflow_run_id": record.mlflow_run_id,
    }])
    finite = math.isfinite(result.best_fitness)
    yield Output(
        table,
        metadata={
            "best_params": MetadataValue.json(best),
            "best_fitness": float(result.best_fitness) if finite else 0.0,
            "n_evaluations": result.n_evaluations,
            "n_trials": n_trials,
            "evaluations": MetadataValue.md(to_markdown(evaluations)),
            "generations": MetadataValue.md(to_markdown(result.history)),
            **_experiment_metadata(store, record),
        },
    )
    yield from to_check_results([CheckOutcome(
        name="best_fitness_finite", passed=finite, blocking=False,
        message=f"best {config.objective} {result.best_fitness:.4f} at {best}" if finite else "no evaluation had a finite fitness",
    )])


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

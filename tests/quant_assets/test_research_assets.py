"""The `research` group for one week over a synthetic warehouse (30 simulated tickers, a momentum
ranking): walk-forward, GA search and backtests materialized once, then checked against the
warehouse, the tear sheet, the experiment store and MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from quant_assets import research
from quant_lib.backtest import deflated_sharpe_ratio, probabilistic_sharpe_ratio
from quant_lib.data.calendar import trading_days
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.reporting import ATTRIBUTION_UNAVAILABLE, PANEL_TITLES
from quant_resources.compute import ComputeBackend
from quant_resources.dagster_home import prepare_dagster_home
from quant_resources.experiments import ExperimentStore, ExperimentStoreResource
from quant_resources.warehouse import Warehouse, WarehouseIOManager, WarehouseResource
from tests.conftest import ROOT

WEEK = "2024-06-22"
WEEK_START, WEEK_END = date(2024, 6, 22), date(2024, 6, 28)
RANKINGS_FROM = date(2023, 1, 3)  # first XNYS session of 2023 (01-02 is the New Year holiday)
GRID = [5, 10, 20, 40]
RUN_CONFIG = {
    "ops": {
        "walk_forward": {"config": {"history_years": 1.5, "top_n_grid": GRID}},
        "ga_search": {"config": {"history_years": 1.5, "population_size": 10, "n_generations": 2}},
        "backtests": {"config": {"history_years": 1.5, "top_n": 10}},
    }
}
ASSETS = [research.walk_forward, research.ga_search, research.backtests]


def synthetic_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Prices of 30 simulated tickers + SPY and a ranking: 0.7 z(126-day momentum) + 0.3 z(-63-day vol)."""
    market = simulate_market(SimulationConfig(n_tickers=30, seed=5), end=WEEK_END)
    prices = market.prices.filter(pl.col("date") >= date(2022, 1, 3))

    def zscore(expr: pl.Expr) -> pl.Expr:
        return (expr - expr.mean().over("date")) / expr.std().over("date")

    stocks = prices.filter(pl.col("ticker") != "SPY").sort("ticker", "date").with_columns(
        (pl.col("adj_close") / pl.col("adj_close").shift(126) - 1).over("ticker").alias("momentum"),
        pl.col("adj_close").pct_change().rolling_std(63).over("ticker").alias("vol"),
    )
    rankings = (
        stocks.drop_nulls(["momentum", "vol"])
        .filter(pl.col("date") >= RANKINGS_FROM)
        .with_columns(zscore(pl.col("momentum")).alias("vsm"), zscore(-pl.col("vol")).alias("bab"))
        .with_columns((0.7 * pl.col("vsm") + 0.3 * pl.col("bab")).alias("score"))
        .with_columns(
            pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"),
            pl.lit("Bull").alias("regime"),
            pl.lit("test_momentum").alias("model_name"),
        )
        .select("date", "ticker", "score", "rank", "regime", "model_name", "vsm", "bab")
    )
    return prices, rankings


@dataclass
class ResearchRun:
    base: Path
    warehouse: Warehouse
    store: ExperimentStore
    prices: pl.DataFrame
    resources: dict
    instance: DagsterInstance
    result: ExecuteInProcessResult
    first_backtests: pl.DataFrame
    rerun: ExecuteInProcessResult


@pytest.fixture(scope="module")
def research_run(tmp_path_factory) -> ResearchRun:
    base = tmp_path_factory.mktemp("research")
    home = prepare_dagster_home(base / "dagster_home", ROOT / "dagster.yaml")
    database = str(base / "warehouse" / "quant.duckdb")
    warehouse = Warehouse(database)
    prices, rankings = synthetic_tables()
    warehouse.write("prices", prices)
    warehouse.write("rankings", rankings)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "compute": ComputeBackend(backend="local", max_workers=1),
        "experiments": ExperimentStoreResource(root_dir=str(base / "mlruns")),
        "reports": research.ReportsResource(directory=str(base / "reports")),
    }
    with DagsterInstance.from_config(str(home)) as instance:
        result = materialize(ASSETS, resources=resources, instance=instance, partition_key=WEEK, run_config=RUN_CONFIG, raise_on_error=False)
        first = warehouse.read("backtests", date_column="week")
        rerun = materialize(
            ASSETS, resources=resources, instance=instance, partition_key=WEEK,
            run_config={"ops": {"backtests": RUN_CONFIG["ops"]["backtests"]}},
            selection=[research.backtests.key], raise_on_error=False,
        )
        yield ResearchRun(base, warehouse, ExperimentStore(base / "mlruns"), prices, resources, instance, result, first, rerun)


def _failures(result: ExecuteInProcessResult) -> list[str]:
    return [e.event_specific_data.error.message for e in result.get_step_failure_events()]


def test_one_week_materializes_with_passing_checks(research_run):
    result = research_run.result
    assert result.success, _failures(result)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in ("metrics_finite", "folds_disjoint", "best_fitness_finite"):
        assert checks[name].passed, (name, checks[name].description)
    wh = research_run.warehouse
    table = wh.read("backtests", date_column="week")
    assert set(table["strategy"]) == {"ranking_top_n", "benchmark", "equal_weight"}
    assert (table["week"] == WEEK_START).all()
    assert (table["start_date"] == RANKINGS_FROM).all() and (table["end_date"] == WEEK_END).all()
    assert {"sharpe", "annualized_return", "max_drawdown", "deflated_sharpe", "total_return", "volatility",
            "run_id", "mlflow_run_id", "report_path"} <= set(table.columns)
    assert table["mlflow_run_id"].is_not_null().all()
    assert (wh.read("walk_forward", date_column="week")["week"] == WEEK_START).all()
    assert wh.read("ga_search", date_column="week").height == 1


def test_benchmark_row_is_buy_and_hold_of_spy(research_run):
    row = research_run.warehouse.read("backtests", date_column="week").filter(pl.col("strategy") == "benchmark").row(0, named=True)
    spy = research_run.prices.filter((pl.col("ticker") == "SPY") & pl.col("date").is_between(RANKINGS_FROM, WEEK_END)).sort("date")
    bought_at = spy["adj_close"][1]
    expected = spy["adj_close"][-1] / bought_at - 1.0
    assert row["total_return"] == pytest.approx(expected, abs=2e-3)
    assert row["total_return"] < expected


def test_tearsheet_written_with_six_panels_and_attribution(research_run):
    table = research_run.warehouse.read("backtests", date_column="week")
    path = Path(table["report_path"][0])
    assert path == research_run.base / "reports" / f"tearsheet_{WEEK}.html"
    html = path.read_text(encoding="utf-8")
    assert all(title in html for title in PANEL_TITLES)
    assert ATTRIBUTION_UNAVAILABLE not in html
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    event = research_run.result.asset_materializations_for_node("backtests")[0]
    assert event.metadata["tearsheet"].value == str(path)
    assert event.metadata["attribution_factors"].value == ["vsm", "bab"]


def test_experiment_store_and_mlflow_hold_every_run(research_run):
    store = research_run.store
    table = research_run.warehouse.read("backtests", date_column="week")
    ga = research_run.warehouse.read("ga_search", date_column="week").row(0, named=True)
    listed = store.list_experiments()
    assert set(table["run_id"]) | {ga["run_id"]} <= set(listed["run_id"])
    assert set(listed["name"]) == {research.STRATEGY_EXPERIMENT, research.BASELINE_EXPERIMENT,
                                   research.WALK_FORWARD_EXPERIMENT, research.GA_EXPERIMENT}
    # GA evaluations (momentum configs) + the walk-forward grid (ranking configs; backtests' top_n=10 is one of them)
    trials = store.count_trials(research.STRATEGY_EXPERIMENT)
    assert trials == ga["n_evaluations"] + len(GRID)
    assert ga["n_evaluations"] > 1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(research.STRATEGY_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    strategy_row = table.filter(pl.col("strategy") == "ranking_top_n").row(0, named=True)
    run = next(r for r in runs if r.info.run_id == strategy_row["mlflow_run_id"])
    assert run.data.metrics["sharpe_ratio"] == pytest.approx(strategy_row["sharpe"])
    assert run.data.tags["data_version.partition"] == WEEK
    event = research_run.result.asset_materializations_for_node("backtests")[0]
    assert event.metadata["mlflow_run_id"].value == strategy_row["mlflow_run_id"]
    assert event.metadata["mlflow_tracking_uri"].value == store.mlflow_tracking_uri


def test_deflated_sharpe_counts_all_recorded_trials(research_run):
    store = research_run.store
    table = research_run.warehouse.read("backtests", date_column="week")
    strategy = table.filter(pl.col("strategy") == "ranking_top_n").row(0, named=True)
    assert strategy["n_trials"] == store.count_trials(research.STRATEGY_EXPERIMENT) > 1
    returns = store.load_experiment(strategy["run_id"]).daily["returns"].to_numpy()
    assert strategy["deflated_sharpe"] == pytest.approx(deflated_sharpe_ratio(returns, strategy["n_trials"]))
    assert strategy["deflated_sharpe"] < probabilistic_sharpe_ratio(returns) == pytest.approx(strategy["probabilistic_sharpe"])
    baselines = table.filter(pl.col("strategy") != "ranking_top_n")
    assert (baselines["n_trials"] == 1).all()
    np.testing.assert_allclose(baselines["deflated_sharpe"].to_numpy(), baselines["probabilistic_sharpe"].to_numpy())


def test_backtests_rerun_gives_identical_results(research_run):
    assert research_run.rerun.success, _failures(research_run.rerun)
    again = research_run.warehouse.read("backtests", date_column="week")
    assert again.equals(research_run.first_backtests)


def test_walk_forward_folds_are_purged_and_disjoint(research_run):
    folds = research_run.warehouse.read("walk_forward", date_column="week").sort("fold")
    assert folds.height == 4
    assert (folds["train_end_date"] < folds["test_start_date"]).all()
    assert (folds["test_start"] - folds["train_end"] == 5 + 1).all()
    assert (folds["test_start_date"].slice(1) > folds["test_end_date"].slice(0, 3)).all()
    assert folds["test_end_date"][-1] == WEEK_END
    calendar = trading_days(RANKINGS_FROM, WEEK_END)
    assert folds["test_start_date"].to_list() == [calendar[i] for i in folds["test_start"]]
    assert set(folds["param_top_n"]) <= set(GRID)
    assert folds["test_sharpe_ratio"].is_finite().all()


def test_ga_search_best_params_in_ranges(research_run):
    ga = research_run.warehouse.read("ga_search", date_column="week").row(0, named=True)
    assert 21 <= ga["lookback"] <= 252 and 5 <= ga["top_n"] <= 40
    assert 0.05 <= ga["vol_target"] <= 0.30 and 0.1 <= ga["fractional_kelly"] <= 1.0
    assert ga["n_evaluations"] <= 10 * 3 and np.isfinite(ga["best_fitness"])
    event = research_run.result.asset_materializations_for_node("ga_search")[0]
    assert event.metadata["evaluations"].value.count("\n") >= ga["n_evaluations"]


def test_make_run_summary_shows_the_latest_week(research_run):
    text = research.research_summary(research_run.warehouse, WEEK_END + timedelta(days=3))
    assert f"week of {WEEK_START}" in text and "ranking_top_n" in text and "GA best" in text


def test_ga_search_does_not_depend_on_a_backend_drawing_random_numbers():
    import random

    from quant_lib.research import GeneticOptimizer

    def fitness(params):
        return -((params["x"] - 3.0) ** 2) - (params["n"] - 7) ** 2

    def noisy_map(fn, items):
        random.random()
        return [fn(item) for item in items]

    ranges = {"x": (0.0, 10.0, float), "n": (1, 20, int)}

    def search(map_fn):
        return GeneticOptimizer(fitness, ranges, population_size=8, n_generations=4, seed=11, map_fn=map_fn).run()

    plain = search(None)
    assert search(research.rng_isolated_map(noisy_map)).all_evaluations.equals(plain.all_evaluations)
    assert not search(noisy_map).all_evaluations.equals(plain.all_evaluations)


def test_portfolio_targets_book_becomes_the_primary_strategy(tmp_path, instance):
    database = str(tmp_path / "warehouse" / "quant.duckdb")
    warehouse = Warehouse(database)
    prices, rankings = synthetic_tables()
    book_from = date(2023, 9, 1)
    book = (
        rankings.filter((pl.col("date") >= book_from) & (pl.col("rank") <= 8))
        .select("date", "ticker", pl.lit(0.1).alias("weight"), pl.lit("test_book").alias("model_name"))
    )
    warehouse.write("prices", prices)
    warehouse.write("rankings", rankings)
    warehouse.write("portfolio_targets", book)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "experiments": ExperimentStoreResource(root_dir=str(tmp_path / "experiments"), enable_mlflow=False),
        "reports": research.ReportsResource(directory=str(tmp_path / "reports")),
    }
    result = materialize(
        [research.backtests], resources=resources, instance=instance, partition_key=WEEK,
        run_config={"ops": {"backtests": RUN_CONFIG["ops"]["backtests"]}}, raise_on_error=False,
    )
    assert result.success, _failures(result)
    table = warehouse.read("backtests", date_column="week")
    assert set(table["strategy"]) == {"ranking_top_n", "portfolio_targets", "benchmark", "equal_weight"}
    first_trading_day = prices.filter(pl.col("date") >= book_from)["date"].min()
    assert (table["start_date"] == first_trading_day).all()
    assert table.filter(pl.col("strategy").is_in(["ranking_top_n", "portfolio_targets"]))["n_trials"].to_list() == [2, 2]
    assert table["mlflow_run_id"].is_null().all()
    event = result.asset_materializations_for_node("backtests")[0]
    assert event.metadata["primary_strategy"].value == "portfolio_targets"
    stored = ExperimentStore(tmp_path / "experiments").load_experiment(
        table.filter(pl.col("strategy") == "portfolio_targets")["run_id"][0]
    )
    assert stored.config["signal"] == "portfolio_targets:test_book"
    invested = stored.daily.filter(pl.col("date") > first_trading_day + timedelta(days=14))["gross_exposure"]
    assert ((invested - 0.8).abs() < 0.05).all()
    assert "portfolio_targets - week of" in Path(table["report_path"][0]).read_text(encoding="utf-8")


def test_make_backtest_targets_the_latest_complete_week():
    from quant_assets.run_backtest import latest_complete_week

    assert latest_complete_week(date(2024, 6, 28)) == date(2024, 6, 22)
    assert latest_complete_week(date(2024, 6, 29)) == date(2024, 6, 22)
    assert latest_complete_week(date(2024, 6, 27)) == date(2024, 6, 15)
    window = research.weekly_partitions.time_window_for_partition_key(latest_complete_week(date(2024, 6, 28)).isoformat())
    assert (window.start.date(), window.end.date()) == (WEEK_START, WEEK_END + timedelta(days=1))

"""The `ml` group over a synthetic warehouse (15 simulated tickers, a momentum ranking with one
planted predictive factor): barrier labels for 18 months in one run, the weekly meta-model with
its blocking promotion check, the champion alias moving only when the check passes, the daily
meta-confidence, and an unreachable registry failing cleanly."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import ExecuteInProcessResult, materialize

from quant_assets import alpha, market, ml
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_resources.model_registry import ModelRegistry, ModelRegistryResource
from quant_resources.warehouse import Warehouse, WarehouseIOManager, WarehouseResource

WEEK = "2024-06-15"
WEEK_END = date(2024, 6, 21)
RANKINGS_FROM = date(2023, 1, 2)
CONFIDENCE_RANGE = ("2024-06-24", "2024-06-28")
BETS = {"top_n": 5, "max_holding": 10}
MODEL = {"n_estimators": 30, "n_splits": 4, "min_labels": 100}
PLANTED = "z_sentiment"
UPSTREAM = [a.to_source_assets()[0] for a in (market.prices, market.fundamentals, alpha.rankings, alpha.regime)]


def synthetic_tables() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Prices of 15 simulated tickers; rankings by 126-day momentum whose `sentiment` column is
    planted: a noisy z-score of the next 3 days' return (what a perfect news signal would be)."""
    market = simulate_market(SimulationConfig(n_tickers=15, seed=11), end=date(2024, 6, 28))
    prices = market.prices.filter(pl.col("date") >= date(2022, 1, 3))
    rng = np.random.default_rng(0)

    def zscore(expr: pl.Expr) -> pl.Expr:
        return (expr - expr.mean().over("date")) / expr.std().over("date")

    stocks = prices.filter(pl.col("ticker") != "SPY").sort("ticker", "date").with_columns(
        (pl.col("adj_close") / pl.col("adj_close").shift(126) - 1).over("ticker").alias("momentum"),
        (pl.col("adj_close").shift(-3) / pl.col("adj_close") - 1).over("ticker").fill_null(0.0).alias("future"),
    )
    stocks = stocks.with_columns(pl.Series("noise", rng.normal(0, 0.01, stocks.height)))
    rankings = (
        stocks.drop_nulls("momentum").filter(pl.col("date") >= RANKINGS_FROM)
        .with_columns(zscore(pl.col("momentum")).alias("vsm"), zscore(pl.col("future") + pl.col("noise")).alias("sentiment"))
        .with_columns(pl.col("vsm").alias("score"))
        .with_columns(
            pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"),
            pl.lit("Bull").alias("regime"), pl.lit("test_momentum").alias("model_name"),
        )
        .select("date", "ticker", "score", "rank", "regime", "model_name", "vsm", "sentiment")
    )  # fmt: skip
    regime = rankings.select("date").unique().with_columns(
        pl.lit("Bull").alias("regime"), pl.lit(0.9).alias("p_bull"), pl.lit(0.1).alias("p_bear"), pl.lit(0.9).alias("confidence")
    )
    news = market.fundamentals.filter(pl.col("metric") == "news_sentiment")
    fundamentals = news.select(pl.col("available_at").alias("date"), "ticker", pl.col("value").alias("news_sentiment"))
    return prices, rankings, regime, fundamentals.filter(pl.col("date") >= date(2022, 1, 3))


@dataclass
class MLRun:
    base: Path
    warehouse: Warehouse
    registry: ModelRegistry
    resources: dict
    labels: ExecuteInProcessResult
    first: ExecuteInProcessResult
    worse: ExecuteInProcessResult
    confidence: ExecuteInProcessResult


def _weekly(resources, instance, **model_config) -> ExecuteInProcessResult:
    return materialize(
        [ml.meta_model, ml.meta_champion], resources=resources, instance=instance, partition_key=WEEK,
        run_config={"ops": {"meta_model": {"config": {**MODEL, **model_config}}}}, raise_on_error=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory) -> MLRun:
    from quant_resources.dagster_storage import ephemeral_instance

    base = tmp_path_factory.mktemp("ml")
    database = str(base / "warehouse" / "quant.duckdb")
    warehouse = Warehouse(database)
    prices, rankings, regime, fundamentals = synthetic_tables()
    for name, frame in (("prices", prices), ("rankings", rankings), ("regime", regime), ("fundamentals", fundamentals)):
        warehouse.write(name, frame)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "model_registry": ModelRegistryResource(root_dir=str(base / "mlruns")),
    }
    with ephemeral_instance() as instance:
        labels = materialize(
            [*UPSTREAM, ml.barrier_labels], resources=resources, instance=instance, raise_on_error=False,
            run_config={"ops": {"barrier_labels": {"config": BETS}}},
            tags={RANGE_START_TAG: RANKINGS_FROM.isoformat(), RANGE_END_TAG: CONFIDENCE_RANGE[1]},
        )  # fmt: skip
        first = _weekly(resources, instance)
        worse = _weekly(resources, instance, exclude_features=[PLANTED], shap_plot=False)
        confidence = materialize(
            [*UPSTREAM, ml.meta_confidence], resources=resources, instance=instance, raise_on_error=False,
            run_config={"ops": {"meta_confidence": {"config": BETS}}},
            tags={RANGE_START_TAG: CONFIDENCE_RANGE[0], RANGE_END_TAG: CONFIDENCE_RANGE[1]},
        )  # fmt: skip
        yield MLRun(base, warehouse, resources["model_registry"].get(), resources, labels, first, worse, confidence)


def _checks(result: ExecuteInProcessResult) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_barrier_labels_partitioned_by_touch_date(ml_run):
    assert ml_run.labels.success
    labels = ml_run.warehouse.read("barrier_labels", date_column="touch_date")
    assert labels.height > 1000
    assert (labels["touch_date"] > labels["date"]).all()
    assert labels["touch_date"].max() <= date(2024, 6, 28)
    assert set(labels["barrier"].unique()) <= {"pt", "sl", "vertical"}
    assert labels.select(pl.struct("date", "ticker").is_duplicated().any()).item() is False
    assert {PLANTED, "vol_20", "mom_126", "roll_spread_20", "p_bull", "target", "rank", "news_agreement"} <= set(labels.columns)


def test_first_challenger_passes_and_becomes_champion(ml_run):
    result = ml_run.first
    assert result.success
    check = _checks(result)["promotion"]
    assert check.passed, check.description
    first = ml_run.registry.get(ml.MODEL_NAME, 1)
    assert first.metrics["cv_auc"] > 0.65
    assert first.tags["week"] == WEEK and first.tags["promotion_passed"] == "True"
    importance = ml_run.registry.load_artifact(ml.MODEL_NAME, 1, "shap_importance.csv").decode()
    assert importance.splitlines()[1].startswith(PLANTED)
    assert ml_run.registry.load_artifact(ml.MODEL_NAME, 1, "shap_summary.png").startswith(b"\x89PNG")
    champion_event = result.asset_materializations_for_node("meta_champion")[0]
    assert champion_event.metadata["champion_version"].value == "1"
    assert "| 1 " in champion_event.metadata["registry_history"].value


def test_worse_challenger_is_blocked_and_champion_stays(ml_run):
    result = ml_run.worse
    check = _checks(result)["promotion"]
    assert not check.passed
    assert result.asset_materializations_for_node("meta_champion") == []
    registry = ml_run.registry
    assert registry.get(ml.MODEL_NAME, "champion").version == 1
    assert registry.get(ml.MODEL_NAME, "challenger").version == 2
    second = registry.get(ml.MODEL_NAME, 2)
    assert second.metrics["cv_auc"] < second.metrics["champion_cv_auc"]
    assert PLANTED not in second.tags["features"]
    history = registry.history(ml.MODEL_NAME)
    assert [(v.version, v.aliases) for v in history] == [(1, ("champion",)), (2, ("challenger",))]


def test_out_of_sample_predictions_stored_for_the_backtest(ml_run):
    table = ml_run.warehouse.read("meta_model", date_column="week")
    assert set(table["model_version"].unique()) == {2}  # the week's partition was replaced by the second run
    scored = table.drop_nulls("probability")
    assert 0 < scored.height < table.height  # the first walk-forward block only trains
    assert scored["probability"].is_between(0, 1).all()


def test_meta_confidence_scores_todays_bets_with_the_champion(ml_run):
    assert ml_run.confidence.success
    confidence = ml_run.warehouse.read("meta_confidence")
    assert confidence["date"].n_unique() == 5 and confidence.height == 25
    assert (confidence["model_version"] == 1).all()
    assert confidence["probability"].is_between(0, 1).all()
    assert (confidence["bet_size"].abs() <= 1).all()
    # the planted factor is known at the bet's start, so the champion separates the bets
    assert confidence["probability"].std() > 0.1


def test_meta_confidence_empty_with_reason_without_champion(ml_run, tmp_path):
    from quant_resources.dagster_storage import ephemeral_instance

    copy = tmp_path / "quant.duckdb"
    shutil.copyfile(ml_run.warehouse.path, copy)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=str(copy)), "io_manager": WarehouseIOManager(database=str(copy)),
        "model_registry": ModelRegistryResource(root_dir=str(tmp_path / "empty")),
    }  # fmt: skip
    with ephemeral_instance() as instance:
        result = materialize(
            [*UPSTREAM, ml.meta_confidence], resources=resources, instance=instance,
            partition_key=CONFIDENCE_RANGE[1],
        )
    event = result.asset_materializations_for_node("meta_confidence")[0]
    assert "no champion" in event.metadata["reason"].value
    assert Warehouse(copy).read("meta_confidence", date(2024, 6, 28), date(2024, 6, 29)).is_empty()
    assert not (tmp_path / "empty").exists()  # no store was created just to find no champion


def test_unreachable_registry_fails_meta_model_and_changes_nothing(ml_run, tmp_path):
    from quant_resources.dagster_storage import ephemeral_instance

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = ml_run.warehouse.read("meta_model", date_column="week")
    resources = {**ml_run.resources, "model_registry": ModelRegistryResource(root_dir=str(blocker / "mlruns"))}
    with ephemeral_instance() as instance:
        result = _weekly(resources, instance)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "unavailable" in message and "nothing was changed" in message
    assert ml_run.warehouse.read("meta_model", date_column="week").equals(before)
    assert len(ml_run.registry.history(ml.MODEL_NAME)) == 2

"""The learning group on the session's simulated warehouse: features, training with the
promotion gate, champion predictions, ensemble weights; the retrain sensor fires once per trigger."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date

import polars as pl
import pytest
from dagster import MultiPartitionKey, build_sensor_context, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_assets import learning
from quant_resources.compute import ComputeBackend
from quant_resources.dagster_storage import ephemeral_instance
from quant_resources.model_registry import ModelRegistryResource
from quant_resources.model_store import ModelStoreResource
from quant_resources.warehouse import Warehouse, WarehouseIOManager, WarehouseResource

WEEK = "2024-06-22"
TINY = {"seq_len": 10, "forecast_horizon": 2, "val_days": 20, "test_days": 20,
        "max_epochs": 1, "history_years": 1.0,
        "model_kwargs_json": json.dumps({"lstm": {"hidden_size": 8, "n_layers": 1, "n_heads": 2},
                                         "momentum": {"hidden_size": 8, "n_heads": 2}})}


PPO = {"ppo_steps": 256, "ppo_window": 5, "history_years": 1.0, "test_fraction": 0.25}


def _run(assets, resources, instance, config=None, **kwargs):
    run_config = {"ops": {"model_checkpoints": {"config": config}}} if config else None
    return materialize(assets, resources=resources, instance=instance, run_config=run_config, raise_on_error=False, **kwargs)


def _key(model: str, week: str = WEEK) -> MultiPartitionKey:
    return MultiPartitionKey({"week": week, "model": model})


def _models(first: str, last: str) -> dict:
    """Tags of one run over the week's partitions first..last (a single-run backfill's range)."""
    return {"tags": {ASSET_PARTITION_RANGE_START_TAG: str(_key(first)), ASSET_PARTITION_RANGE_END_TAG: str(_key(last))}}


@pytest.fixture(scope="module")
def learning_run(daily_graph, tmp_path_factory):
    base = tmp_path_factory.mktemp("learning")
    database = str(base / "quant.duckdb")
    shutil.copy(daily_graph.warehouse_path, database)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=database), "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database), "compute": ComputeBackend(backend="serial"),
        "model_store": ModelStoreResource(root_dir=str(base / "models")),
        "model_registry": ModelRegistryResource(root_dir=str(base / "mlruns")),
    }
    with ephemeral_instance() as instance:
        runs = {
            "features": _run([learning.ml_features], resources, instance, partition_key="2024-06-27"),
            "first": _run([learning.model_checkpoints], resources, instance, {**TINY, "naive_margin": -10.0, "min_improvement_tstat": -1e9}, **_models("lstm", "momentum")),
            "bad": _run([learning.model_checkpoints], resources, instance, {**TINY, "naive_margin": 1e6}, **_models("lstm", "momentum")),
            "ppo": _run([learning.model_checkpoints], resources, instance, PPO, partition_key=_key("ppo")),
            "predictions": _run([learning.model_predictions], resources, instance, partition_key="2024-06-27"),
            "ensemble": _run([learning.ensemble_weights], resources, instance, partition_key="2024-06-28"),
        }
        yield runs, Warehouse(database), resources["model_registry"].get(), base


def test_ml_features_panel(learning_run) -> None:
    runs, warehouse, _, _ = learning_run
    assert runs["features"].success
    features = warehouse.read("ml_features")
    assert features["date"].unique().to_list() == [date(2024, 6, 27)]
    assert features.height == 10 and {"cp_score", "cp_severity", "rsi_14", "excess_return_1"} <= set(features.columns)
    assert "target" not in features.columns
    assert features["cp_score"].is_between(0, 1).all()


def test_promotion_gate_moves_champion_only_for_good_checkpoints(learning_run) -> None:
    runs, warehouse, registry, base = learning_run
    assert runs["first"].success
    first = {c.check_name: c.passed for c in runs["first"].get_asset_check_evaluations()}
    assert first["promotion_lstm"] and first["promotion_momentum"]
    assert registry.get("ml_lstm", "champion").version == 1
    bad = {c.check_name: c.passed for c in runs["bad"].get_asset_check_evaluations()}
    assert not bad["promotion_lstm"] and not bad["promotion_momentum"]
    assert registry.get("ml_lstm", "champion").version == 1  # the failed challenger never became champion
    assert registry.get("ml_lstm", "challenger").version == 2
    table = warehouse.read("model_checkpoints", date_column="week").sort("model")
    nets = table.filter(pl.col("model") != "ppo")  # the later ppo partition run left these rows alone
    assert nets["model"].to_list() == ["lstm", "momentum"] and nets["version"].to_list() == [2, 2]
    assert not nets["promoted"].any() and nets["champion_version_before"].to_list() == [1, 1]
    assert (base / "models" / "lstm" / WEEK / "checkpoint.pt").exists() and (base / "models" / "lstm" / WEEK / "pipeline.json").exists()
    assert registry.get("ml_transformer", "champion") is None


def test_ppo_partition_trains_the_allocator_against_equal_weight(learning_run) -> None:
    runs, warehouse, registry, base = learning_run
    checks = {c.check_name: c for c in runs["ppo"].get_asset_check_evaluations()}
    assert checks["promotion_lstm"].passed and checks["promotion_lstm"].metadata["message"].value == "not in this run's partitions"
    ppo = checks["promotion_ppo"]
    assert runs["ppo"].success == ppo.passed  # a blocking check that fails fails the run (the version stays a challenger)
    assert {"oos_loss", "naive_loss", "improvement_tstat"} <= set(ppo.metadata)
    row = warehouse.read("model_checkpoints", date_column="week").filter(pl.col("model") == "ppo").row(0, named=True)
    assert row["registered_model"] == "ml_ppo" and row["version"] == 1 and row["n_test"] > 10
    assert math.isfinite(row["naive_loss"]) and row["n_train"] > row["n_test"]
    assert (base / "models" / "ppo" / WEEK / "checkpoint.pt").exists()
    assert registry.get("ml_ppo", "challenger").tags["week"] == WEEK


def test_predictions_from_champions_with_version_and_ensemble(learning_run) -> None:
    runs, warehouse, _, _ = learning_run
    assert runs["predictions"].success and runs["ensemble"].success
    predictions = warehouse.read("model_predictions")
    assert set(predictions["model"]) == {"lstm", "momentum"} and predictions["model_version"].unique().to_list() == [1]
    assert predictions.group_by("model").len()["len"].to_list() == [10, 10]
    assert predictions.filter(pl.col("model") == "momentum")["prediction"].abs().max() <= 1.0
    weights = warehouse.read("ensemble_weights")
    assert weights.height == 4 and weights["weight"].sum() == 0.0  # one realized day < min_obs


def test_retrain_sensor_fires_each_trigger_once(tmp_path) -> None:
    database = str(tmp_path / "quant.duckdb")
    warehouse = Warehouse(database)
    dates = [d for d in pl.date_range(date(2024, 5, 1), date(2024, 6, 28), "1d", eager=True).to_list() if d.weekday() < 5]
    features = pl.DataFrame({"date": dates, "ticker": "AAA", "cp_score": [0.1] * len(dates)})
    warehouse.write("ml_features", features)
    models = list(learning.TRAINED_MODELS)
    warehouse.write("model_checkpoints", pl.DataFrame({"week": [date(2024, 6, 1)] * len(models), "model": models}))
    sharpe = pl.DataFrame({"date": [dates[-1]] * 4, "model": list(learning.MODEL_NAMES), "sharpe": [1.0, -1.0, 1.0, 1.0],
                           "n_obs": [30] * 4, "weight": [0.3] * 4, "status": ["ok"] * 4})
    warehouse.write("ensemble_weights", sharpe)
    resources = {"warehouse": WarehouseResource(database=database)}
    with ephemeral_instance() as instance:
        def evaluate(cursor):
            context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            result = learning.retrain_sensor(context)
            requests = result if isinstance(result, list) else []
            return requests, context.cursor

        requests, cursor = evaluate(None)
        fired = {(r.tags["retrain_model"], r.tags["retrain_triggers"]) for r in requests}
        assert fired == {("itransformer", "sharpe")}  # 15 days since the 06-01 week < interval 20; Sharpe < 0
        assert requests[0].partition_key == _key("itransformer") == "itransformer|" + WEEK  # that model's partition only
        assert not requests[0].run_config
        assert evaluate(cursor)[0] == []  # the same trigger does not fire again
        more = [d for d in pl.date_range(date(2024, 7, 1), date(2024, 7, 9), "1d", eager=True).to_list() if d.weekday() < 5]
        scores = [0.1] * (len(more) - 1) + [0.95]
        warehouse.write("ml_features", pl.concat([features, pl.DataFrame({"date": more, "ticker": "AAA", "cp_score": scores})]))
        requests, cursor = evaluate(cursor)
        fired = {(r.tags["retrain_model"], r.tags["retrain_triggers"]) for r in requests}
        assert fired == {(m, "interval,bocpd") for m in models}  # 22 days; cp_score 0.95 (live nets and PPO too)
        assert len({r.run_key for r in requests}) == len(models) == 9
        assert {r.partition_key for r in requests} == {_key(m, "2024-07-06") for m in models}
        assert evaluate(cursor)[0] == []
        warehouse.write("model_checkpoints", pl.DataFrame({"week": [date(2024, 6, 1)] * len(models) + [date(2024, 6, 29)],
                                                           "model": [*models, "lstm"]}))
        requests, _ = evaluate(cursor)
        assert requests == []  # lstm's new cycle has 2 bars < min_samples; the others already fired

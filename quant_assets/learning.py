"""The `learning` group: seed 004's features, deep models trained walk-forward, their
predictions and ensemble weights, and the retrain sensor.

- `ml_features` (daily): the raw feature panel of the ML symbols (`ML_SYMBOLS`, default the first
  `ML_MAX_SYMBOLS` tickers of `prices`): 43 technical indicators, 10 calendar encodings, 2
  cross-sectional excess returns and BOCPD `cp_score` / `cp_severity`. Computed over the symbols'
  whole stored history (recursive averages and BOCPD depend on where they start), so a date's
  row is the same in a daily run and in a backfill. The forward-return target is never stored.
- `model_checkpoints` (week x model multi-partition, `model_partitions`): a partition is one model
  trained on data known by the week's Friday (`training_data` says what each model trains on:
  the four forecasters walk-forward on the FeaturePipeline panel, `live_<net>` on the live loop's
  bar features, `ppo` on the symbols' returns). A run covering several partitions (a single-run
  backfill, `quant train --model all`) fans their training out through the `compute` resource.
  Checkpoint + pipeline state go to the model store (`<model>/<week>/`) and the model registry
  (`ml_<model>` / `live_<net>`, one MLflow run each); the warehouse rows of exactly the run's
  (week, model) partitions are replaced. Blocking check per model `promotion_<model>`: the
  challenger's out-of-sample loss beats the naive forecast (zero return / always long / equal
  weight) and is not worse than the champion's on the same test block by more than
  `champion_margin`; only then does `champion` move.
- `model_predictions` (daily): each champion's forecast for every ML symbol, model version in
  every row. `ensemble_weights` (daily): Sharpe weights from realized out-of-sample returns.
- `retrain_sensor`: requests the (week, model) partition of the model whose trigger fires
  (interval / rolling Sharpe / BOCPD, each guarded by `retrain_min_samples`), once per trigger
  and retrain cycle (cursor + run key).
"""


import json
import logging
from datetime import date, timedelta
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    Config,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    sensor,
)
from pydantic import Field

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, partition_dates, single_run, weekly_partitions
from quant_assets.training_data import FORECASTERS, TRAINED_MODELS, WeekData, ml_prices, registered_name
from quant_lib.data.quality import CheckOutcome
from quant_lib.factors import to_markdown
from quant_resources.compute import ComputeBackend
from quant_resources.model_registry import ModelRegistry, ModelRegistryResource
from quant_resources.model_store import ModelStoreResource
from quant_resources.settings import get_settings
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

logger = logging.getLogger(__name__)

MODEL_NAMES = FORECASTERS
"""Same names as ``quant_lib.models.MODEL_NAMES`` (not imported here: torch stays out of start-up)."""

model_partitions = MultiPartitionsDefinition(
    {"week": weekly_partitions, "model": StaticPartitionsDefinition(list(TRAINED_MODELS))})
"""`model_checkpoints`: one partition per week and model (keys like ``lstm|2024-06-22``)."""


@asset(**daily_asset("learning", deps=["prices"]), description="Seed 004 feature panel of the ML symbols, BOCPD included.")
def ml_features(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output[pl.DataFrame]:
    from quant_lib.features.pipeline import build_raw_features

    first, last = partition_dates(context)
    sectors = warehouse.get().read("universe", last, last + timedelta(days=1), columns=["ticker", "sector"], read_only=False)
    prices = ml_prices(warehouse.get(), last).join(  # sectors make BOCPD's input sector-neutral
        sectors.filter(pl.col("sector") != "Unknown").unique("ticker"), on="ticker", how="left")
    raw, _, _, names = build_raw_features(prices)
    out = raw.filter(pl.col("date").is_between(first, last)).select("date", "ticker", *names)
    return Output(out, metadata={"symbols": out["ticker"].n_unique(), "features": len(names),
                                 "max_cp_score": float(out["cp_score"].max() or 0.0)})


class TrainingConfig(Config):
    """Training knobs of `model_checkpoints` (which models train is the run's partitions)."""

    history_years: float = Field(3.0, description="Years of data up to the week's Friday.")
    seq_len: int = Field(30, description="Window length (bars).")
    forecast_horizon: int = Field(5, description="Bars forecast by the return models.")
    val_days: int = Field(60, description="Validation block (early stopping), trading days.")
    test_days: int = Field(60, description="Out-of-sample test block (promotion gate), trading days.")
    max_epochs: int = Field(10)
    patience: int = Field(3)
    lr: float = Field(1e-3)
    seed: int = Field(0)
    target: str = Field("log_return", description="log_return or excess_log_return (vs the symbols' mean).")
    model_kwargs_json: str = Field("{}", description='Sizes per partition model, e.g. {"lstm": {"hidden_size": 64}}.')
    naive_margin: float = Field(0.0, description="Relative margin by which the loss must beat the naive forecast.")
    champion_margin: float = Field(0.05, description="How much worse than the champion (relative) a challenger may be.")
    min_improvement_tstat: float = Field(1.0, description="Minimum Diebold-Mariano t-statistic of the improvement over the naive forecast.")
    symbols: list[str] = Field(default_factory=list, description="Symbols to train on (default: ML_SYMBOLS or the first ML_MAX_SYMBOLS tickers).")
    interval: str = Field("1d", description="Bar interval of the live_* nets and PPO (the ml nets use daily prices).")
    bars_source: str = Field("warehouse", description="warehouse (prices / intraday_bars) or replay (the simulated tape `quant live` replays).")
    replay_bars: int = Field(3_000, description="Bars per symbol of the replay tape.")
    replay_seed: int = Field(7, description="Seed of the replay tape.")
    test_fraction: float = Field(0.2, description="live_* nets and PPO: last fraction of the bars tested out of sample (and of the rest validated).")
    ppo_steps: int = Field(4_096, description="PPO environment steps.")
    ppo_window: int = Field(10, description="Bars of returns PPO observes.")
    ppo_lr: float = Field(3e-3)


def run_partitions(context: AssetExecutionContext) -> dict[date, list[str]]:
    """The run's (week, model) partitions grouped by week; a single-run backfill or a partition
    range covers several (a rectangle of weeks x models)."""
    by_week: dict[date, list[str]] = {}
    for key in context.partition_keys:
        dims = model_partitions.get_partition_key_from_str(key).keys_by_dimension
        by_week.setdefault(date.fromisoformat(dims["week"]), []).append(dims["model"])
    return {week: [m for m in TRAINED_MODELS if m in models] for week, models in sorted(by_week.items())}


def _gate(registry: ModelRegistry, trained: dict[str, Any], data: WeekData, config: TrainingConfig):
    """Register the challenger, score the champion on the same test block, decide, promote."""
    from quant_lib.models.promotion import promotion_decision

    model, metrics = trained["model"], trained["metrics"]
    name, state = registered_name(model), data.state(model)
    champion = registry.get(name, "champion")
    champion_loss = None
    if champion is not None:
        champion_state = json.loads(registry.load_artifact(name, champion.version, "pipeline.json"))
        champion_loss = data.champion_loss(model, registry.load_artifact(name, champion.version, "checkpoint.pt"),
                                           champion_state, trained["test_period"])
    decision = promotion_decision(metrics["oos_loss"], metrics["naive_loss"], champion_loss, config.naive_margin,
                                  config.champion_margin, metrics.get("improvement_tstat"), config.min_improvement_tstat)
    version = registry.register(
        name, {"checkpoint.pt": trained["checkpoint"], "pipeline.json": json.dumps(state).encode()},
        params={**config.model_dump(), "model": model, "architecture": trained["architecture"], "test_period": trained["test_period"]},
        metrics={k: float(v) for k, v in metrics.items()},
        tags={"week": data.week.isoformat(), "promoted": str(decision.promote), "interval": state.get("interval", "1d")},
        experiment="model_checkpoints",
    )
    if decision.promote:
        registry.promote(name, version.version)
    logger.info("%s week %s: version %s %s (%s)", name, data.week, version.version,
                "promoted to champion" if decision.promote else "not promoted", decision.reason)
    return version, decision, champion


@asset(
    partitions_def=model_partitions, backfill_policy=single_run, pool=WAREHOUSE_POOL, io_manager_key="warehouse_io_manager",
    group_name="learning", kinds={"pytorch", "mlflow", "duckdb"}, metadata={"partition_expr": {"week": "week", "model": "model"}},
    deps=["prices"],
    check_specs=check_specs("model_checkpoints", [
        (f"promotion_{m}", f"{m}: out-of-sample loss beats the naive forecast and the champion (margin); only then champion moves.", True)
        for m in TRAINED_MODELS]),
    description="One partition per week x model: the net (or PPO agent) trained on data known by the week's end, "
                "checkpoint in the model store, version in the registry; promotion gate per model.",
)
def model_checkpoints(
    context: AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource, compute: ComputeBackend,
    model_store: ModelStoreResource, model_registry: ModelRegistryResource,
):
    from quant_lib.models.tasks import run_training_task

    weeks = {week: WeekData(warehouse.get(), config, week) for week in run_partitions(context)}
    jobs = [(weeks[week], model) for week, models in run_partitions(context).items() for model in models]
    trained = compute.map(run_training_task, [data.payload(model) for data, model in jobs])
    rows, outcomes = [], []
    for (data, model), result in zip(jobs, trained):
        model_store.get().save(model, data.week.isoformat(), result["checkpoint"], data.state(model))
        version, decision, champion = _gate(model_registry.get(), result, data, config)
        rows.append(_row(data.week, result, version.version, decision, champion))
        outcomes.append(CheckOutcome(f"promotion_{model}", decision.promote, decision.reason, dict(result["metrics"])))
    done = {model for _, model in jobs}
    outcomes += [CheckOutcome(f"promotion_{m}", True, "not in this run's partitions", blocking=False) for m in TRAINED_MODELS if m not in done]
    table = pl.DataFrame(rows, schema=CHECKPOINT_SCHEMA).sort("week", "model")
    yield Output(table, metadata={"models": MetadataValue.md(to_markdown(table.drop("reason"))), "partitions": len(jobs)})
    yield from to_check_results(outcomes)


CHECKPOINT_SCHEMA = {
    "week": pl.Date, "model": pl.String, "registered_model": pl.String, "version": pl.Int64, "promoted": pl.Boolean,
    "champion_version_before": pl.Int64, "oos_loss": pl.Float64, "naive_loss": pl.Float64, "champion_loss": pl.Float64,
    "n_train": pl.Int64, "n_test": pl.Int64, "test_start": pl.Date, "test_end": pl.Date, "reason": pl.String,
}


def _row(week: date, result: dict, version: int, decision, champion) -> dict[str, Any]:
    m = result["metrics"]
    return {"week": week, "model": result["model"], "registered_model": registered_name(result["model"]), "version": version,
            "promoted": decision.promote, "champion_version_before": champion.version if champion else None,
            "oos_loss": m["oos_loss"], "naive_loss": m["naive_loss"], "champion_loss": decision.champion_loss,
            "n_train": int(m["n_train"]), "n_test": int(m["n_test"]), "test_start": date.fromisoformat(result["test_period"][0][:10]),
            "test_end": date.fromisoformat(result["test_period"][1][:10]), "reason": decision.reason}


@asset(**daily_asset("learning", deps=["prices", "model_checkpoints"]), description="Each champion's forecast per ML symbol and day.")
def model_predictions(context: AssetExecutionContext, warehouse: WarehouseResource, model_registry: ModelRegistryResource) -> Output[pl.DataFrame]:
    from quant_lib.models.inference import predict_panel

    first, last = partition_dates(context)
    registry, prices, frames = model_registry.get(), ml_prices(warehouse.get(), last), []
    for architecture in MODEL_NAMES:
        name = registered_name(architecture)
        champion = registry.get(name, "champion")
        if champion is None:
            context.log.warning(f"no champion for {name}: no predictions from it")
            continue
        state = json.loads(registry.load_artifact(name, champion.version, "pipeline.json"))
        panel = predict_panel(registry.load_artifact(name, champion.version, "checkpoint.pt"), state, prices, first, last)
        frames.append(panel.with_columns(model=pl.lit(architecture), model_version=pl.lit(champion.version, pl.Int64)))
    out = pl.concat(frames) if frames else pl.DataFrame(schema=PREDICTION_SCHEMA)
    return Output(out.select(list(PREDICTION_SCHEMA)), metadata={"models": len(frames), "rows": out.height})


PREDICTION_SCHEMA = {"date": pl.Date, "ticker": pl.String, "model": pl.String, "model_version": pl.Int64,
                     "prediction": pl.Float64, "prediction_sum": pl.Float64, "signal": pl.Float64}


class EnsembleConfig(Config):
    lookback: int = Field(63, description="Realized days in the rolling Sharpe.")
    min_obs: int = Field(20, description="Realized days a model needs before it gets weight.")


@asset(**daily_asset("learning", deps=["prices", "model_predictions"]), description="Sharpe-weighted ensemble weights from realized out-of-sample returns.")
def ensemble_weights(context: AssetExecutionContext, config: EnsembleConfig, warehouse: WarehouseResource) -> Output[pl.DataFrame]:
    from quant_lib.models.ensemble import ensemble_weights as weights_panel
    from quant_lib.models.ensemble import realized_strategy_returns

    first, last = partition_dates(context)
    wh = warehouse.get()
    since = first - timedelta(days=int(config.lookback * 7 / 5) + 14)
    predictions = wh.read("model_predictions", since, last, read_only=False) if wh.has_table("model_predictions") else pl.DataFrame(schema=PREDICTION_SCHEMA)
    prices = ml_prices(wh, last, since)
    days = prices.filter(pl.col("date").is_between(first, last))["date"].unique().sort().to_list()
    returns = realized_strategy_returns(predictions, prices)
    out = weights_panel(returns, list(MODEL_NAMES), days, config.lookback, config.min_obs)
    return Output(out, metadata={"days": len(days), "weights": MetadataValue.md(to_markdown(out.tail(len(MODEL_NAMES))))})


model_training_job = define_asset_job(
    "model_training_job", selection=["model_checkpoints"], partitions_def=model_partitions,
    description="Training of the learning layer's models, one partition per week x model (also what the retrain "
                "sensor requests; a backfill of a week's models is one run that fans out through `compute`).",
)


def week_partition_key(day: date) -> str:
    """The weekly partition (Saturday start) holding ``day``."""
    return (day - timedelta(days=(day.weekday() - 5) % 7)).isoformat()


def retrain_inputs(warehouse: Warehouse) -> dict[str, Any] | None:
    """What the triggers need, read from the warehouse: the latest feature date and its highest
    cp_score, the trading days since each model's last training, each forecaster's latest Sharpe
    (the live nets and PPO have no daily predictions: interval and BOCPD triggers only)."""
    if not warehouse.has_table("ml_features"):
        return None
    features = warehouse.read("ml_features", columns=["date", "cp_score"])
    if features.is_empty():
        return None
    days = features["date"].unique().sort()
    latest = days[-1]
    trained = (warehouse.read("model_checkpoints", date_column="week", columns=["week", "model"])
               if warehouse.has_table("model_checkpoints") else pl.DataFrame(schema={"week": pl.Date, "model": pl.String}))
    sharpe = (warehouse.read("ensemble_weights").filter(pl.col("date") == pl.col("date").max())
              if warehouse.has_table("ensemble_weights") else pl.DataFrame(schema={"model": pl.String, "sharpe": pl.Float64, "n_obs": pl.Int64}))
    models = {}
    for model in TRAINED_MODELS:
        weeks = trained.filter(pl.col("model") == model)["week"]
        last_week = weeks.max() if weeks.len() else None
        since = days.filter(days > last_week + timedelta(days=6)) if last_week is not None else days
        row = sharpe.filter(pl.col("model") == model)
        models[model] = {"last_week": str(last_week), "bars_since": since.len(),
                         "sharpe": row["sharpe"][0] if row.height else None, "sharpe_obs": int(row["n_obs"][0]) if row.height else 0}
    cp = features.filter(pl.col("date") == latest)["cp_score"].max()
    return {"latest": latest, "cp_score": cp, "models": models}


def retrain_requests(inputs: dict[str, Any], cursor: dict[str, Any]) -> tuple[list[RunRequest], dict[str, Any]]:
    """Run requests for the triggers that fire and were not fired yet in the model's current
    retrain cycle (the cycle changes when a new training week appears), and the new cursor."""
    from quant_lib.models.retrain import RetrainConfig, retrain_triggers

    s = get_settings()
    config = RetrainConfig(s.retrain_interval, s.retrain_sharpe_threshold, s.retrain_cp_score_threshold, s.retrain_min_samples)
    requests, new_cursor = [], {}
    for model, info in inputs["models"].items():
        seen = cursor.get(model, {})
        fired = set(seen.get("fired", [])) if seen.get("last_week") == info["last_week"] else set()
        triggers = retrain_triggers(info["bars_since"], info["sharpe"], info["sharpe_obs"], inputs["cp_score"], config)
        new = [t for t in triggers if t not in fired]
        if new:
            key = MultiPartitionKey({"week": week_partition_key(inputs["latest"]), "model": model})
            requests.append(RunRequest(
                run_key=f"retrain:{model}:{info['last_week']}:{'+'.join(new)}", partition_key=key,
                tags={"retrain_model": model, "retrain_triggers": ",".join(new)},
            ))
        new_cursor[model] = {"last_week": info["last_week"], "fired": sorted(fired | set(new))}
    return requests, new_cursor


@sensor(job=model_training_job, minimum_interval_seconds=3600, description="Retrain a model (its week x model partition) when the interval, its rolling Sharpe or BOCPD says so.")
def retrain_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    inputs = retrain_inputs(warehouse.get())
    if inputs is None:
        return SkipReason("no ml_features yet")
    requests, cursor = retrain_requests(inputs, json.loads(context.cursor or "{}"))
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return requests or SkipReason(f"no trigger fired on {inputs['latest']}")

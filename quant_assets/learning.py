"""The `learning` group: seed 004's features, deep models trained walk-forward, their
predictions and ensemble weights, and the retrain sensor.

- `ml_features` (daily): the raw feature panel of the ML symbols (`ML_SYMBOLS`, default the first
  `ML_MAX_SYMBOLS` tickers of `prices`): 43 technical indicators, 10 calendar encodings, 2
  cross-sectional excess returns and BOCPD `cp_score` / `cp_severity`. Computed over the symbols'
  whole stored history (recursive averages and BOCPD depend on where they start), so a date's
  row is the same in a daily run and in a backfill. The forward-return target is never stored.
- `model_checkpoints` (weekly): each architecture trained walk-forward on the last
  `history_years` of data known by the week's Friday (fan-out through the `compute` resource),
  checkpoint + fitted pipeline state saved in the model store and registered in the model
  registry (`ml_<architecture>`, alias `challenger`, one MLflow run each). Blocking check per
  architecture `promotion_<architecture>`: the challenger's out-of-sample loss beats the naive
  forecast and is not worse than the champion's on the same test block by more than
  `champion_margin`; only then does `champion` move.
- `model_predictions` (daily): each champion's forecast for every ML symbol, model version in
  every row. `ensemble_weights` (daily): Sharpe weights from realized out-of-sample returns.
- `retrain_sensor`: requests a `model_checkpoints` run for one architecture when a trigger fires
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
    Failure,
    MetadataValue,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    sensor,
)
from pydantic import Field

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, partition_dates, weekly_partitions
from quant_lib.data.quality import CheckOutcome
from quant_lib.factors import to_markdown
from quant_resources.compute import ComputeBackend
from quant_resources.model_registry import ModelRegistry, ModelRegistryResource
from quant_resources.model_store import ModelStoreResource
from quant_resources.settings import get_settings
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

logger = logging.getLogger(__name__)

MODEL_NAMES = ("transformer", "itransformer", "lstm", "momentum")
"""Same names as ``quant_lib.models.MODEL_NAMES`` (not imported here: torch stays out of start-up)."""
OHLCV = ["date", "ticker", "open", "high", "low", "close", "volume"]


def registered_name(architecture: str) -> str:
    return f"ml_{architecture}"


def ml_prices(warehouse: Warehouse, until: date, since: date | None = None) -> pl.DataFrame:
    """OHLCV of the ML symbols from ``since`` (default: the first stored day) to ``until``."""
    settings = get_settings()
    prices = warehouse.read("prices", since, until + timedelta(days=1), columns=OHLCV, read_only=False)
    if prices.is_empty():
        raise Failure(f"no prices up to {until}: materialize `prices` first")
    symbols = settings.ml_symbols
    if not symbols:
        tickers = prices["ticker"].unique().sort()
        symbols = tickers.filter(tickers != settings.benchmark_ticker).head(settings.ml_max_symbols).to_list()
    missing = sorted(set(symbols) - set(prices["ticker"].unique()))
    if missing:
        logger.warning("ML symbols without prices up to %s: %s", until, missing)
    return prices.filter(pl.col("ticker").is_in(symbols))


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
    """Walk-forward training knobs of `model_checkpoints`."""

    models: list[str] = Field(default_factory=lambda: list(MODEL_NAMES), description="Architectures to train.")
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
    model_kwargs_json: str = Field("{}", description='Per-architecture sizes, e.g. {"lstm": {"hidden_size": 64}}.')
    naive_margin: float = Field(0.0, description="Relative margin by which the loss must beat the naive forecast.")
    champion_margin: float = Field(0.05, description="How much worse than the champion (relative) a challenger may be.")
    min_improvement_tstat: float = Field(1.0, description="Minimum Diebold-Mariano t-statistic of the improvement over the naive forecast.")


def _payloads(config: TrainingConfig, X, y, index: pl.DataFrame, feature_names: list[str]) -> list[dict[str, Any]]:
    from quant_lib.models.walk_forward import WalkForwardConfig

    unknown = sorted(set(config.models) - set(MODEL_NAMES))
    if unknown or not config.models:
        raise Failure(f"unknown models {unknown}; choose from {list(MODEL_NAMES)}")
    sizes = json.loads(config.model_kwargs_json)
    device = get_settings().ml_device
    return [
        dict(architecture=name, X=X, y=y, dates=index["date"].to_numpy(), groups=index["ticker"].to_numpy(),
             feature_names=feature_names, config=WalkForwardConfig(
                 seq_len=config.seq_len, forecast_horizon=config.forecast_horizon, val_dates=config.val_days,
                 test_dates=config.test_days, max_epochs=config.max_epochs, patience=config.patience, lr=config.lr,
                 seed=config.seed, device=device, model_kwargs=sizes.get(name, {})))
        for name in config.models
    ]


def _gate(registry: ModelRegistry, trained: dict[str, Any], state: dict, prices: pl.DataFrame, config: TrainingConfig):
    """Register the challenger, score the champion on the same test block, decide, promote."""
    from quant_lib.models.inference import evaluate_checkpoint
    from quant_lib.models.promotion import promotion_decision

    name, metrics = registered_name(trained["architecture"]), trained["metrics"]
    champion = registry.get(name, "champion")
    first, last = (date.fromisoformat(d) for d in trained["test_period"])
    champion_loss = None
    if champion is not None:
        champion_state = json.loads(registry.load_artifact(name, champion.version, "pipeline.json"))
        champion_loss, _, _ = evaluate_checkpoint(
            registry.load_artifact(name, champion.version, "checkpoint.pt"), champion_state, prices, first, last)
    decision = promotion_decision(metrics["oos_loss"], metrics["naive_loss"], champion_loss, config.naive_margin,
                                  config.champion_margin, metrics.get("improvement_tstat"), config.min_improvement_tstat)
    version = registry.register(
        name, {"checkpoint.pt": trained["checkpoint"], "pipeline.json": json.dumps(state).encode()},
        params={**config.model_dump(), "architecture": trained["architecture"], "test_period": trained["test_period"]},
        metrics={k: float(v) for k, v in metrics.items()}, tags={"week": trained["week"], "promoted": str(decision.promote)},
        experiment="model_checkpoints",
    )
    if decision.promote:
        registry.promote(name, version.version)
    return version, decision, champion


@asset(
    partitions_def=weekly_partitions, pool=WAREHOUSE_POOL, io_manager_key="warehouse_io_manager", group_name="learning",
    kinds={"pytorch", "mlflow", "duckdb"}, metadata={"partition_expr": "week"}, deps=["prices"],
    check_specs=check_specs("model_checkpoints", [
        (f"promotion_{m}", f"{m}: out-of-sample loss beats the naive forecast and the champion (margin); only then champion moves.", True)
        for m in MODEL_NAMES]),
    description="Nets trained walk-forward on data known by the week's end; promotion gate per architecture.",
)
def model_checkpoints(
    context: AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource, compute: ComputeBackend,
    model_store: ModelStoreResource, model_registry: ModelRegistryResource,
):
    from quant_lib.features.pipeline import FeaturePipeline
    from quant_lib.models.walk_forward import train_task

    week, week_end = partition_dates(context)
    prices = ml_prices(warehouse.get(), week_end, week_end - timedelta(days=round(365.25 * config.history_years)))
    pipeline = FeaturePipeline(forecast_horizon=1, target=config.target)
    X, y = pipeline.fit_transform(prices)
    state = pipeline.get_state()
    trained = compute.map(train_task, _payloads(config, X, y, pipeline.index_, pipeline.feature_names))
    rows, outcomes = _previous_rows(warehouse.get(), week, config.models), []
    for result in trained:
        result["week"] = week.isoformat()
        model_store.get().save(result["architecture"], week.isoformat(), result["checkpoint"], state)
        version, decision, champion = _gate(model_registry.get(), result, state, prices, config)
        rows.append(_row(week, result, version.version, decision, champion))
        outcomes.append(CheckOutcome(f"promotion_{result['architecture']}", decision.promote, decision.reason, dict(result["metrics"])))
    outcomes += [CheckOutcome(f"promotion_{m}", True, "not trained in this run", blocking=False) for m in MODEL_NAMES if m not in config.models]
    table = pl.DataFrame(rows).sort("model")
    yield Output(table, metadata={"models": MetadataValue.md(to_markdown(table.drop("reason"))), "features": len(pipeline.feature_names)})
    yield from to_check_results(outcomes)


def _row(week: date, result: dict, version: int, decision, champion) -> dict[str, Any]:
    m = result["metrics"]
    return {"week": week, "model": result["architecture"], "version": version, "promoted": decision.promote,
            "champion_version_before": champion.version if champion else None, "oos_loss": m["oos_loss"],
            "naive_loss": m["naive_loss"], "champion_loss": decision.champion_loss, "n_train": m["n_train"],
            "n_test": m["n_test"], "test_start": date.fromisoformat(result["test_period"][0]),
            "test_end": date.fromisoformat(result["test_period"][1]), "reason": decision.reason}


def _previous_rows(warehouse: Warehouse, week: date, retrained: list[str]) -> list[dict[str, Any]]:
    """Rows of the week's other architectures, kept when a run retrains only some of them."""
    if not warehouse.has_table("model_checkpoints"):
        return []
    previous = warehouse.read("model_checkpoints", week, week + timedelta(days=1), date_column="week", read_only=False)
    return previous.filter(~pl.col("model").is_in(retrained)).to_dicts()


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
    "model_training_job", selection=["model_checkpoints"], partitions_def=weekly_partitions,
    description="Walk-forward training of the learning layer's nets for a week (also what the retrain sensor requests).",
)


def week_partition_key(day: date) -> str:
    """The weekly partition (Saturday start) holding ``day``."""
    return (day - timedelta(days=(day.weekday() - 5) % 7)).isoformat()


def retrain_inputs(warehouse: Warehouse) -> dict[str, Any] | None:
    """What the triggers need, read from the warehouse: the latest feature date and its highest
    cp_score, the trading days since each model's last training, each model's latest Sharpe."""
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
    for model in MODEL_NAMES:
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
            key = week_partition_key(inputs["latest"])
            requests.append(RunRequest(
                run_key=f"retrain:{model}:{info['last_week']}:{'+'.join(new)}", partition_key=key,
                run_config={"ops": {"model_checkpoints": {"config": {"models": [model]}}}},
                tags={"retrain_model": model, "retrain_triggers": ",".join(new)},
            ))
        new_cursor[model] = {"last_week": info["last_week"], "fired": sorted(fired | set(new))}
    return requests, new_cursor


@sensor(job=model_training_job, minimum_interval_seconds=3600, description="Retrain a net when the interval, its rolling Sharpe or BOCPD says so.")
def retrain_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    inputs = retrain_inputs(warehouse.get())
    if inputs is None:
        return SkipReason("no ml_features yet")
    requests, cursor = retrain_requests(inputs, json.loads(context.cursor or "{}"))
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return requests or SkipReason(f"no trigger fired on {inputs['latest']}")

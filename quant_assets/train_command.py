"""`quant train`: materialize the `model_checkpoints` partitions of the asked models for one week.

The warehouse keeps one writer: the command materializes the asset in process over the (week,
model) partitions (one run, as `model_training_job` would; several models fan out through the
`compute` resource; resources from the current settings), and reads back the rows it wrote. `--model lstm` is the live loop's net (partition
`live_lstm`), `--model ppo` the PPO allocator, `--model all` the four live nets and PPO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import click

from quant_assets.training_data import FORECASTERS, LIVE_PREFIX

ASSET = "model_checkpoints"


@dataclass(frozen=True)
class TrainRequest:
    model: str
    symbols: list[str]
    interval: str
    epochs: int
    source: str
    bars: int
    seq_len: int
    seed: int
    week: date | None = None


def partition_models(model: str) -> list[str]:
    """The `model` partition keys of ``--model`` (contiguous in the partition order)."""
    nets = [LIVE_PREFIX + m for m in FORECASTERS]
    if model == "all":
        return [*nets, "ppo"]
    if model == "ppo":
        return ["ppo"]
    if model not in FORECASTERS:
        raise click.BadParameter(f"unknown model {model!r}; choose all, ppo or one of {', '.join(FORECASTERS)}",
                                 param_hint="--model")
    return [LIVE_PREFIX + model]


def saturday(day: date) -> date:
    """Start (Saturday) of the weekly partition holding ``day``."""
    return day - timedelta(days=(day.weekday() - 5) % 7)


def training_week(request: TrainRequest) -> date:
    """``--week``, else the week of the replay tape's last bar, else the current week."""
    if request.week is not None:
        return saturday(request.week)
    if request.source == "replay":
        from quant_assets.live_runner import replay_bars

        tape = replay_bars(request.symbols[:1], request.interval, request.bars, request.seed)
        return saturday(tape["timestamp"].max().date())
    return saturday(date.today())


def run_config(request: TrainRequest) -> dict[str, Any]:
    config = {"symbols": request.symbols, "interval": request.interval, "bars_source": request.source,
              "replay_bars": request.bars, "replay_seed": request.seed, "seq_len": request.seq_len,
              "max_epochs": request.epochs, "seed": request.seed, "ppo_steps": request.epochs * 256}
    # Dagster's console logger would print a stack trace for a promotion gate that says no; the
    # command reports each model's outcome itself, and any other failure through `training_error`.
    return {"ops": {ASSET: {"config": config}}, "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _validate(request: TrainRequest) -> None:
    from quant_assets.live_runner import parse_interval

    try:
        parse_interval(request.interval)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--interval") from error
    if request.source == "warehouse" and request.interval not in ("1d", "1m", "5m", "15m", "1h"):
        raise click.BadParameter(f"the warehouse holds 1d, 1m, 5m, 15m and 1h bars, not {request.interval}",
                                 param_hint="--interval")


def training_error(result: Any) -> str | None:
    """The message of a step that failed for another reason than a promotion gate saying no."""
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        if error is None or error.cls_name == "DagsterAssetCheckFailedError":
            continue
        while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
            error = error.cause
        message = error.message.strip()
        task = re.search(r"failed for item .*?: (\w+(?:Error|Exception): .*)$", message, re.DOTALL)
        return (task.group(1) if task else message).removeprefix("dagster._core.definitions.events.Failure: ")
    return None


def run_training(request: TrainRequest) -> list[dict[str, Any]]:
    """Materialize the request's partitions; returns the rows written (model, version, promoted,
    losses, reason). ClickException with the cause when training failed."""
    _validate(request)
    models, week = partition_models(request.model), training_week(request)
    from quant_assets.run_daily import prepare_dagster_home

    prepare_dagster_home()
    from dagster import DagsterInstance, MultiPartitionKey, materialize
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from quant_assets.learning import model_checkpoints
    from quant_assets.resources import build_resources
    from quant_resources.run_recovery import recover_and_report

    keys = [MultiPartitionKey({"week": week.isoformat(), "model": m}) for m in models]
    span = ({"partition_key": keys[0]} if len(keys) == 1 else
            {"tags": {ASSET_PARTITION_RANGE_START_TAG: str(keys[0]), ASSET_PARTITION_RANGE_END_TAG: str(keys[-1])}})
    instance = DagsterInstance.get()
    recover_and_report(instance)
    result = materialize([model_checkpoints], resources=build_resources(), run_config=run_config(request),
                         instance=instance, raise_on_error=False, **span)
    error = training_error(result)
    if error is not None:
        raise click.ClickException(f"training {', '.join(models)} for week {week} failed: {error}")
    return written_rows(week, models)


def written_rows(week: date, models: list[str]) -> list[dict[str, Any]]:
    import polars as pl

    from quant_resources.settings import get_settings
    from quant_resources.warehouse import Warehouse

    rows = Warehouse(get_settings().duckdb_path).read(ASSET, week, week + timedelta(days=1), date_column="week")
    return rows.filter(pl.col("model").is_in(models)).sort("model").to_dicts()

"""Experiment store with full lineage + MLflow tracking (seed 000 §4.6.4 ModelRegistry, §4.6.5
ExperimentStore).

One folder per run under ``<root>/runs/<run_id>/``:

- ``config.json``: every parameter of the run;
- ``equity_curve.parquet``: the daily frame (date, equity, returns, ...);
- ``trades.parquet``: the trade log;
- ``metrics.json``: performance metrics (non-finite numbers stored as null);
- ``metadata.json``: run_id, name, created_at, git SHA, config/data hashes, data_version
  (partition range + upstream data versions), tags and the MLflow run id.

``run_id = <name-slug>-<sha256(name, config, data_version)[:16]>`` so the same experiment on the
same data always gets the same id and saving it again replaces the folder (the new folder is
written next to it and swapped in with ``os.replace``: readers see the old or the new run, never
a half-written one). ``count_trials(name)`` counts the distinct configurations tried under a
name - saved runs plus configurations registered with ``record_trials`` (e.g. every GA
evaluation) - which is the ``n_trials`` of the deflated Sharpe ratio (Bailey & Lopez de Prado 2014).

MLflow: MLflow 3.x refuses the plain-file tracking store (``./mlruns``) unless
``MLFLOW_ALLOW_FILE_STORE=true`` and recommends a database, so the default tracking URI is a
local SQLite file ``sqlite:///<root>/mlflow.db`` with artifacts under ``<root>/mlartifacts``;
both work offline (telemetry is switched off). Each saved run is one MLflow run in the MLflow
experiment named after ``name`` (params = flattened config, metrics = finite numeric metrics,
tags = tags + data version + git commit, artifacts = the run folder); saving the same run id
again logs into the same MLflow run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from dagster import ConfigurableResource

from quant_resources.atomic import atomic_write_bytes
from quant_resources.atomic import fsync_dir as _fsync_dir

RUN_FILES = ("config.json", "equity_curve.parquet", "trades.parquet", "metrics.json", "metadata.json")
_LIST_COLUMNS = {
    "run_id": pl.String,
    "name": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "git_sha": pl.String,
    "config_hash": pl.String,
    "data_hash": pl.String,
    "mlflow_run_id": pl.String,
    "path": pl.String,
}
_MLFLOW_PARAM_MAX_CHARS = 6000


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, type):
        return value.__name__
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON (dates as ISO strings, numpy scalars as Python numbers)."""
    return json.dumps(_finite_or_none(value), sort_keys=True, separators=(",", ":"), default=_json_default)


def stable_hash(value: Any) -> str:
    """sha256 hex digest of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def mlflow_experiment_id(client, name: str, artifact_root: str | Path) -> str:
    """Id of the MLflow experiment ``name``: created with its artifacts under
    ``<artifact_root>/<slug>`` when missing, restored when deleted."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=f"{artifact_root}/{slugify(name)}")
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"experiment name {name!r} has no letters or digits")
    return slug[:60]


def make_run_id(name: str, config: Mapping[str, Any], data_version: Mapping[str, Any]) -> str:
    """Deterministic run id from (name, config, data_version)."""
    digest = stable_hash({"name": name, "config": config, "data_version": data_version})
    return f"{slugify(name)}-{digest[:16]}"


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b": "value"}`` strings for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{dotted}."))
        else:
            if isinstance(value, str):
                text = value
            elif isinstance(value, (dt.date, dt.datetime)):
                text = value.isoformat()
            else:
                text = canonical_json(value)
            flat[dotted] = text[:_MLFLOW_PARAM_MAX_CHARS]
    return flat


def current_git_sha(cwd: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the project checkout, or ``"unknown"``."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = completed.stdout.strip()
    return sha if completed.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else "unknown"


def _write_bytes_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class ExperimentRecord:
    """Where a saved run lives: folder ``path``, MLflow run id (None when MLflow is off)."""

    run_id: str
    path: Path
    mlflow_run_id: str | None
    git_sha: str


@dataclass(frozen=True)
class StoredExperiment:
    """A run read back from disk."""

    record: ExperimentRecord
    config: dict[str, Any]
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    daily: pl.DataFrame
    trades: pl.DataFrame


class ExperimentStore:
    """Lineage store for backtests and searches; see the module docstring for the layout.

    ``mlflow_tracking_uri``: None -> ``sqlite:///<root_dir>/mlflow.db``; ``enable_mlflow=False``
    writes the folders only.
    """

    def __init__(
        self,
        root_dir: str | Path,
        mlflow_tracking_uri: str | None = None,
        enable_mlflow: bool = True,
        git_sha: str | None = None,
    ) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.runs_dir = self.root_dir / "runs"
        self.trials_dir = self.root_dir / "trials"
        self.enable_mlflow = enable_mlflow
        self.mlflow_tracking_uri = mlflow_tracking_uri or f"sqlite:///{(self.root_dir / 'mlflow.db').as_posix()}"
        self.artifact_root = (self.root_dir / "mlartifacts").as_uri()
        self._git_sha = git_sha
        self._client = None

    @property
    def git_sha(self) -> str:
        if self._git_sha is None:
            self._git_sha = current_git_sha()
        return self._git_sha

    def mlflow_client(self):
        """A ``MlflowClient`` bound to this store's tracking URI (created on first use)."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            from mlflow.tracking import MlflowClient

            self.root_dir.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.mlflow_tracking_uri)
        return self._client

    def mlflow_experiment_id(self, name: str) -> str:
        """Id of the MLflow experiment ``name`` (created with this store's artifact root)."""
        return mlflow_experiment_id(self.mlflow_client(), name, self.artifact_root)

    def save_experiment(
        self,
        name: str,
        config: Mapping[str, Any],
        daily: pl.DataFrame,
        trades: pl.DataFrame,
        metrics: Mapping[str, Any],
        data_version: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
    ) -> ExperimentRecord:
        """Write the run folder atomically, then log it to MLflow; re-saving replaces the run."""
        if not isinstance(daily, pl.DataFrame) or not isinstance(trades, pl.DataFrame):
            raise ValueError("daily and trades must be polars DataFrames")
        if "date" not in daily.columns:
            raise ValueError(f"daily (equity curve) needs a 'date' column; has {daily.columns}")
        tags = dict(tags or {})
        run_id = make_run_id(name, config, data_version)
        config_hash = stable_hash(config)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        staging = self.runs_dir / f".tmp-{run_id}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        mlflow_run_id = None
        try:
            _write_bytes_synced(staging / "config.json", canonical_json(config).encode("utf-8"))
            _write_bytes_synced(staging / "metrics.json", canonical_json(metrics).encode("utf-8"))
            for frame, filename in ((daily, "equity_curve.parquet"), (trades, "trades.parquet")):
                frame.write_parquet(staging / filename)
                with open(staging / filename, "rb") as handle:
                    os.fsync(handle.fileno())
            mlflow_run_id = self._log_to_mlflow(name, run_id, config_hash, config, metrics, data_version, tags)
            metadata = {
                "run_id": run_id,
                "name": name,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "git_sha": self.git_sha,
                "config_hash": config_hash,
                "data_hash": stable_hash(data_version),
                "data_version": data_version,
                "tags": tags,
                "mlflow_run_id": mlflow_run_id,
                "mlflow_tracking_uri": self.mlflow_tracking_uri if self.enable_mlflow else None,
            }
            _write_bytes_synced(staging / "metadata.json", canonical_json(metadata).encode("utf-8"))
            path = self._swap_in(staging, run_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if mlflow_run_id is not None:
                self.mlflow_client().set_terminated(mlflow_run_id, "FAILED")
            raise
        if mlflow_run_id is not None:
            client = self.mlflow_client()
            client.log_artifacts(mlflow_run_id, str(path))
            client.set_terminated(mlflow_run_id, "FINISHED")
        return ExperimentRecord(run_id=run_id, path=path, mlflow_run_id=mlflow_run_id, git_sha=self.git_sha)

    def _swap_in(self, staging: Path, run_id: str) -> Path:
        """Replace ``runs/<run_id>`` by the fully written ``staging`` folder (renames only)."""
        _fsync_dir(staging)
        target = self.runs_dir / run_id
        if target.exists():
            retired = self.runs_dir / f".old-{run_id}-{uuid.uuid4().hex[:8]}"
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
        _fsync_dir(self.runs_dir)
        return target

    def _log_to_mlflow(self, name, run_id, config_hash, config, metrics, data_version, tags) -> str | None:
        if not self.enable_mlflow:
            return None
        from mlflow.entities import Metric, Param, RunTag

        client = self.mlflow_client()
        experiment_id = self.mlflow_experiment_id(name)
        existing = client.search_runs(
            [experiment_id], filter_string=f"tags.`quant.run_id` = '{run_id}'", max_results=1
        )
        run_tags = {
            **{str(k): str(v) for k, v in tags.items()},
            **{f"data_version.{k}": v for k, v in flatten_params(data_version).items()},
            "quant.run_id": run_id,
            "quant.config_hash": config_hash,
            "mlflow.source.git.commit": self.git_sha,
        }
        if existing:
            mlflow_run_id = existing[0].info.run_id
        else:
            mlflow_run_id = client.create_run(experiment_id, tags=run_tags, run_name=run_id).info.run_id
        timestamp = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
        numeric_metrics = [
            Metric(str(k), float(v), timestamp, 0)
            for k, v in metrics.items()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        params = [Param(k, v) for k, v in flatten_params(config).items()]
        client.log_batch(
            mlflow_run_id,
            metrics=numeric_metrics,
            params=[] if existing else params,
            tags=[RunTag(k, v) for k, v in run_tags.items()],
        )
        return mlflow_run_id

    def _read_metadata(self) -> list[dict[str, Any]]:
        if not self.runs_dir.exists():
            return []
        rows = []
        for path in sorted(self.runs_dir.glob("*/metadata.json")):
            if path.parent.name.startswith("."):
                continue
            metadata = json.loads(path.read_text(encoding="utf-8"))
            metadata["path"] = str(path.parent)
            rows.append(metadata)
        return rows

    def list_experiments(self, name: str | None = None) -> pl.DataFrame:
        """One row per saved run (optionally one name): lineage columns + numeric metrics."""
        rows = []
        for metadata in self._read_metadata():
            if name is not None and metadata["name"] != name:
                continue
            metrics = json.loads((Path(metadata["path"]) / "metrics.json").read_text(encoding="utf-8"))
            row = {column: metadata.get(column) for column in _LIST_COLUMNS}
            for key, value in metrics.items():
                if key not in row and isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[key] = float(value)
            rows.append(row)
        if not rows:
            return pl.DataFrame(schema=_LIST_COLUMNS)
        frame = pl.from_dicts(rows, infer_schema_length=None)
        frame = frame.with_columns(pl.col(c).cast(t) for c, t in _LIST_COLUMNS.items() if c != "created_at")
        return frame.with_columns(
            pl.col("created_at").cast(pl.String).str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        ).sort("name", "created_at", "run_id")

    def record_trials(self, name: str, configs: Iterable[Mapping[str, Any]]) -> int:
        """Register configurations evaluated under ``name`` without saving full runs (e.g. all GA
        evaluations); returns the new ``count_trials(name)``."""
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        path = self.trials_dir / f"{slugify(name)}.json"
        known = set(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else set()
        known.update(stable_hash(config) for config in configs)
        atomic_write_bytes(path, json.dumps(sorted(known)).encode("utf-8"))
        return self.count_trials(name)

    def count_trials(self, name: str) -> int:
        """Distinct configurations tried under ``name`` (saved runs and recorded trials), the
        ``n_trials`` of the deflated Sharpe ratio."""
        hashes = {m["config_hash"] for m in self._read_metadata() if m["name"] == name}
        path = self.trials_dir / f"{slugify(name)}.json"
        if path.exists():
            hashes.update(json.loads(path.read_text(encoding="utf-8")))
        return len(hashes)

    def load_experiment(self, run_id: str) -> StoredExperiment:
        """Read a saved run back (config, metrics, metadata, equity curve, trades)."""
        path = self.runs_dir / run_id
        if run_id.startswith(".") or "/" in run_id or not (path / "metadata.json").exists():
            raise FileNotFoundError(f"no experiment run {run_id!r} under {self.runs_dir}")
        metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
        return StoredExperiment(
            record=ExperimentRecord(run_id, path, metadata.get("mlflow_run_id"), metadata.get("git_sha", "unknown")),
            config=json.loads((path / "config.json").read_text(encoding="utf-8")),
            metrics=json.loads((path / "metrics.json").read_text(encoding="utf-8")),
            metadata=metadata,
            daily=pl.read_parquet(path / "equity_curve.parquet"),
            trades=pl.read_parquet(path / "trades.parquet"),
        )


class ExperimentStoreResource(ConfigurableResource):
    """Dagster resource giving assets an ``ExperimentStore`` (``mlflow_tracking_uri`` None ->
    SQLite under ``root_dir``)."""

    root_dir: str
    mlflow_tracking_uri: str | None = None
    enable_mlflow: bool = True

    def get(self) -> ExperimentStore:
        return ExperimentStore(self.root_dir, self.mlflow_tracking_uri, self.enable_mlflow)

"""Model registry: MLflow registered models with aliases (seed 000 §4.6.4 ModelRegistry).

A registered model (e.g. ``meta_labeler``) has numbered versions; each version is one MLflow run
(params, metrics, tags and the model's files under the run's ``model/`` artifact folder). Aliases
name the versions that matter: ``challenger`` (the latest candidate) and ``champion`` (the version
production uses, ``models:/<name>@champion``). MLflow's stages are deprecated; aliases replace
them. Moving an alias is one atomic update in the tracking database.

Same set-up as ``quant_resources.experiments``: a local SQLite tracking store (default
``sqlite:///<warehouse>/mlruns/mlflow.db``, artifacts under ``<warehouse>/mlruns/mlartifacts``),
offline, telemetry off; mlflow is imported inside the methods (start-up time).

An unreachable registry (a database folder that cannot be created, a server that does not
answer) raises ``RegistryUnavailableError`` before anything is written. A registration that
fails half-way deletes the run and the version it created, so a failed call changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dagster import ConfigurableResource

from quant_resources.experiments import mlflow_experiment_id, slugify

_ARTIFACT_DIR = "model"
_RESERVED_TAG_PREFIX = "mlflow."
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9._-]+$")
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model with its run's params/metrics/tags and current aliases."""

    name: str
    version: int
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    aliases: tuple[str, ...]
    created_at: dt.datetime


class RegistryUnavailableError(RuntimeError):
    """The tracking store / model registry cannot be reached; nothing was changed."""


def _artifact_uri(root: str | Path) -> str:
    text = str(root)
    if "://" in text or text.startswith("file:"):
        return text.rstrip("/")
    return Path(text).resolve().as_uri()




def _is_not_found(error: Exception) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


class ModelRegistry:
    """Register, look up, load and promote versions of MLflow registered models."""

    def __init__(self, tracking_uri: str, artifact_root: str | Path) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = _artifact_uri(artifact_root)
        self._client = None

    def __repr__(self) -> str:
        return f"ModelRegistry(tracking_uri={self.tracking_uri!r}, artifact_root={self.artifact_root!r})"

    # -- connection -------------------------------------------------------------------------
    def store_exists(self) -> bool:
        """False when the local SQLite store has not been created yet, so nothing is registered
        (answered without importing mlflow); True for any other store."""
        if self.tracking_uri.startswith("sqlite:///"):
            path = self.tracking_uri[len("sqlite:///") :]
            return path == ":memory:" or Path(path).exists()
        return True

    def _unavailable(self, reason: str, error: BaseException | None = None) -> RegistryUnavailableError:
        detail = f": {type(error).__name__}: {error}" if error is not None else ""
        return RegistryUnavailableError(
            f"model registry at {self.tracking_uri!r} is unavailable ({reason}){detail}; nothing was changed"
        )

    def _probe(self) -> None:
        """Fail fast, before any write, when the store cannot be reached."""
        parsed = urlparse(self.tracking_uri)
        if parsed.scheme == "sqlite":
            path = self.tracking_uri[len("sqlite:///") :]
            if not path or path == ":memory:":
                return
            folder = Path(path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise self._unavailable(f"cannot create the database folder {folder}", error) from error
            if not os.access(folder, os.W_OK):
                raise self._unavailable(f"database folder {folder} is not writable")
        elif parsed.scheme in ("http", "https"):
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                socket.create_connection((parsed.hostname, port), timeout=_PROBE_TIMEOUT_S).close()
            except OSError as error:
                raise self._unavailable(f"no answer from {parsed.hostname}:{port}", error) from error

    def client(self):
        """The ``MlflowClient`` (created and checked on first use)."""
        if self._client is None:
            self._probe()
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            from mlflow.tracking import MlflowClient

            try:
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                client.search_registered_models(max_results=1)
            except Exception as error:  # noqa: BLE001 - any failure to reach the store is the same condition
                raise self._unavailable("the store does not answer", error) from error
            self._client = client
        return self._client

    # -- writing ----------------------------------------------------------------------------
    def _experiment_id(self, experiment: str) -> str:
        return mlflow_experiment_id(self.client(), experiment, self.artifact_root)

    def register(
        self,
        name: str,
        artifacts: Mapping[str, bytes],
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str] = {},  # noqa: B006 - read-only default, part of the public API
        experiment: str | None = None,
        alias: str = "challenger",
    ) -> RegisteredVersion:
        """Log one run (params, metrics, tags, ``artifacts`` as files under ``model/``), create a
        new version of ``name`` from it and point ``alias`` at that version."""
        _validate_artifacts(artifacts)
        clean_metrics = _validate_metrics(metrics)
        client = self.client()
        from mlflow.entities import Metric, Param, RunTag

        run_id = None
        version = None
        try:
            experiment_id = self._experiment_id(experiment or name)
            run = client.create_run(experiment_id, tags={"quant.registered_model": name}, run_name=slugify(name))
            run_id = run.info.run_id
            timestamp = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, timestamp, 0) for k, v in clean_metrics.items()],
                params=[Param(str(k), str(v)[:6000]) for k, v in params.items()],
                tags=[RunTag(str(k), str(v)) for k, v in tags.items()],
            )
            with tempfile.TemporaryDirectory(prefix="registry-") as staging:
                for filename, data in artifacts.items():
                    Path(staging, filename).write_bytes(bytes(data))
                client.log_artifacts(run_id, staging, artifact_path=_ARTIFACT_DIR)
            client.set_terminated(run_id, "FINISHED")
            self._ensure_registered_model(name)
            model_version = client.create_model_version(
                name, source=f"{run.info.artifact_uri}/{_ARTIFACT_DIR}", run_id=run_id, tags=dict(tags)
            )
            version = int(model_version.version)
            self._set_alias(name, version, alias)
        except BaseException:
            self._undo(name, run_id, version)
            raise
        registered = self.get(name, version)
        assert registered is not None
        return registered

    def _ensure_registered_model(self, name: str) -> None:
        client = self.client()
        try:
            client.get_registered_model(name)
        except Exception as error:  # noqa: BLE001
            if not _is_not_found(error):
                raise
            client.create_registered_model(name, description="Registered by quant_resources.model_registry")

    def _set_alias(self, name: str, version: int, alias: str) -> None:
        client = self.client()
        client.set_registered_model_alias(name, alias, str(version))
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        client.set_model_version_tag(name, str(version), f"alias.{alias}.set_at", stamp)

    def _undo(self, name: str, run_id: str | None, version: int | None) -> None:
        """Best-effort removal of what a failed ``register`` created."""
        client = self._client
        if client is None:
            return
        if version is not None:
            try:
                client.delete_model_version(name, str(version))
            except Exception:  # noqa: BLE001, S110 - cleanup must not mask the original error
                pass
        if run_id is not None:
            try:
                client.delete_run(run_id)
            except Exception:  # noqa: BLE001, S110
                pass

    def promote(self, name: str, version: int, alias: str = "champion") -> None:
        """Point ``alias`` (default ``champion``) at ``version``; the previous holder loses it."""
        if self.get(name, int(version)) is None:
            raise ValueError(f"registered model {name!r} has no version {version}")
        self._set_alias(name, int(version), alias)

    # -- reading ----------------------------------------------------------------------------
    def _model_version(self, name: str, alias_or_version: str | int):
        client = self.client()
        try:
            if isinstance(alias_or_version, int) or str(alias_or_version).isdigit():
                return client.get_model_version(name, str(int(alias_or_version)))
            return client.get_model_version_by_alias(name, str(alias_or_version))
        except Exception as error:  # noqa: BLE001
            if _is_not_found(error) or "not found" in str(error).lower():
                return None
            raise

    def _aliases(self, name: str) -> dict[int, tuple[str, ...]]:
        """version -> its aliases, from the registered model (search results omit them)."""
        by_version: dict[int, list[str]] = {}
        for alias, version in (self.client().get_registered_model(name).aliases or {}).items():
            by_version.setdefault(int(version), []).append(alias)
        return {version: tuple(sorted(names)) for version, names in by_version.items()}

    def _to_registered(self, model_version, aliases: dict[int, tuple[str, ...]] | None = None) -> RegisteredVersion:
        client = self.client()
        run = client.get_run(model_version.run_id)
        aliases = (aliases if aliases is not None else self._aliases(model_version.name)).get(
            int(model_version.version), ()
        )
        return RegisteredVersion(
            name=model_version.name,
            version=int(model_version.version),
            run_id=model_version.run_id,
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            params=dict(run.data.params),
            tags={k: v for k, v in run.data.tags.items() if not k.startswith(_RESERVED_TAG_PREFIX)},
            aliases=aliases,
            created_at=dt.datetime.fromtimestamp(model_version.creation_timestamp / 1000, tz=dt.timezone.utc),
        )

    def get(self, name: str, alias_or_version: str | int) -> RegisteredVersion | None:
        """The version an alias points at, or a version number; None when there is none."""
        model_version = self._model_version(name, alias_or_version)
        return None if model_version is None else self._to_registered(model_version)

    def load_artifact(self, name: str, alias_or_version: str | int, filename: str) -> bytes:
        """Bytes of one file registered with the version (``register``'s ``artifacts`` key)."""
        if not _SAFE_FILENAME.match(filename):
            raise ValueError(f"artifact filename {filename!r} must be a plain file name")
        model_version = self._model_version(name, alias_or_version)
        if model_version is None:
            raise LookupError(f"registered model {name!r} has no version or alias {alias_or_version!r}")
        client = self.client()
        with tempfile.TemporaryDirectory(prefix="registry-load-") as target:
            try:
                local = client.download_artifacts(model_version.run_id, f"{_ARTIFACT_DIR}/{filename}", target)
            except Exception as error:  # noqa: BLE001
                raise FileNotFoundError(
                    f"version {model_version.version} of {name!r} has no artifact {filename!r}"
                ) from error
            return Path(local).read_bytes()

    def history(self, name: str) -> list[RegisteredVersion]:
        """Every version of ``name``, oldest first (empty when the model is not registered)."""
        client = self.client()
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            return []
        aliases = self._aliases(name)
        return [self._to_registered(v, aliases) for v in sorted(versions, key=lambda v: int(v.version))]


def _validate_artifacts(artifacts: Mapping[str, bytes]) -> None:
    if not artifacts:
        raise ValueError("register needs at least one artifact (filename -> bytes)")
    bad = [name for name in artifacts if not isinstance(name, str) or not _SAFE_FILENAME.match(name)]
    if bad:
        raise ValueError(f"artifact names must be plain file names ([A-Za-z0-9._-]); got {bad}")
    wrong = [name for name, data in artifacts.items() if not isinstance(data, (bytes, bytearray, memoryview))]
    if wrong:
        raise ValueError(f"artifacts must be bytes; {wrong} are not")


def _validate_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"metric {key!r} is not a number: {value!r}") from error
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"metric {key!r} is not finite: {value!r}")
        clean[str(key)] = number
    return clean


class ModelRegistryResource(ConfigurableResource):
    """Dagster resource giving assets a ``ModelRegistry``.

    ``root_dir``: the MLflow folder (the project uses ``<warehouse>/mlruns``); ``tracking_uri``
    None -> ``sqlite:///<root_dir>/mlflow.db``, the project default shared with the experiment
    store. Artifacts go under ``<root_dir>/mlartifacts``.
    """

    root_dir: str
    tracking_uri: str | None = None

    def get(self) -> ModelRegistry:
        root = Path(self.root_dir).resolve()
        uri = self.tracking_uri or f"sqlite:///{(root / 'mlflow.db').as_posix()}"
        return ModelRegistry(uri, root / "mlartifacts")

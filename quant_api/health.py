"""Health endpoints (seed 000 §4.6.10, §7.3.3) and the dependency checks of `/health/deep`.

- `/health`: liveness. The process answers; nothing else is checked (a Kubernetes liveness probe
  must not restart the pod because a dependency is down).
- `/ready`: readiness. The published snapshot opens and is younger than
  `SNAPSHOT_MAX_AGE_HOURS`; otherwise 503 with the reason (the pod leaves the Service).
- `/health/deep`: one entry per dependency, for people and monitors (503 only when unhealthy).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quant_api.models import DeepHealth, DependencyCheck, Health, Ready
from quant_lib.data.freshness import trading_hours_lag
from quant_resources.snapshots import Snapshot, SnapshotError

router = APIRouter(tags=["health"])
LOW_DISK_BYTES = 1 << 30
CRITICAL_DISK_BYTES = 100 << 20


@router.get("/health", response_model=Health, summary="Liveness probe")
def health() -> Health:
    return Health(status="healthy", as_of=None, snapshot_id=None)


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}}, summary="Readiness probe")
def ready(request: Request):
    settings = request.app.state.settings
    try:
        snapshot = request.app.state.reader.current()
    except SnapshotError as exc:
        body = Ready(status="not_ready", reason=str(exc), checks={"snapshot": "error"}, as_of=None, snapshot_id=None)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    age_hours = snapshot.manifest.age_seconds() / 3600
    checks = {
        "snapshot": "ok",
        "snapshot_age_hours": round(age_hours, 3),
        "data_lag_hours": _lag_hours(snapshot, settings),
    }
    if age_hours > settings.snapshot_max_age_hours:
        reason = f"snapshot {snapshot.snapshot_id} is {age_hours:.1f} h old (limit {settings.snapshot_max_age_hours} h)"
        body = Ready(status="not_ready", reason=reason, checks=checks, **_ids(snapshot))
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return Ready(status="ready", checks=checks, **_ids(snapshot))


@router.get("/health/deep", response_model=DeepHealth, responses={503: {"model": DeepHealth}}, summary="Deep health check")
def deep_health(request: Request):
    settings = request.app.state.settings
    snapshot, snapshot_check = _snapshot_check(request)
    checks = {
        "snapshot": snapshot_check,
        "warehouse_writer_lock": warehouse_lock_check(settings.duckdb_path),
        "dagster_webserver": _dagster_check(settings.dagster_webserver_url),
        "mlflow_store": _mlflow_check(settings.mlflow_dir),
        "disk_space": _disk_check(request.app.state.reader.serving_dir),
        "data_freshness": _freshness_check(snapshot, settings),
        "circuit_breakers": DependencyCheck(
            status="ok", detail="the API calls no external service; provider breakers live in the Dagster runs"
        ),
    }
    statuses = {c.status for c in checks.values()}
    status = "unhealthy" if snapshot is None else "degraded" if statuses & {"warning", "error"} else "healthy"
    body = DeepHealth(status=status, checks=checks, **_ids(snapshot))
    if status == "unhealthy":
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return body


def _ids(snapshot: Snapshot | None) -> dict:
    if snapshot is None:
        return {"as_of": None, "snapshot_id": None}
    return {"as_of": snapshot.manifest.as_of, "snapshot_id": snapshot.snapshot_id}


def _lag_hours(snapshot: Snapshot, settings) -> float | None:
    lag = trading_hours_lag(snapshot.manifest.as_of, datetime.now(timezone.utc), settings.market_close_hour, settings.market_timezone)
    return round(lag, 3) if lag != float("inf") else None


def _snapshot_check(request: Request) -> tuple[Snapshot | None, DependencyCheck]:
    try:
        snapshot = request.app.state.reader.current()
    except SnapshotError as exc:
        return None, DependencyCheck(status="error", detail=str(exc))
    manifest = snapshot.manifest
    age_hours = manifest.age_seconds() / 3600
    limit = request.app.state.settings.snapshot_max_age_hours
    return snapshot, DependencyCheck(
        status="ok" if age_hours <= limit else "warning",
        detail=f"snapshot {manifest.snapshot_id} published {age_hours:.2f} h ago by run {manifest.run_id}",
        data={"age_hours": round(age_hours, 3), "tables": manifest.tables, "max_age_hours": limit},
    )


def warehouse_lock_holder(path: Path) -> int | None:
    """PID of the process holding DuckDB's write lock on `path` (fcntl F_GETLK: asks without
    taking the lock, so a run is never disturbed), or None when nobody writes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        query = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    finally:
        os.close(fd)
    lock_type, _, _, _, pid = struct.unpack("hhxxxxqqixxxx", answer)
    return None if lock_type == fcntl.F_UNLCK else pid


def warehouse_lock_check(path: Path) -> DependencyCheck:
    if not path.exists():
        return DependencyCheck(status="warning", detail=f"no warehouse at {path} yet: run `make run`")
    try:
        holder = warehouse_lock_holder(path)
    except OSError as exc:
        return DependencyCheck(status="warning", detail=f"lock state unknown: {exc.strerror}")
    if holder is None:
        return DependencyCheck(status="ok", detail="no process holds the warehouse lock", data={"holder_pid": None})
    return DependencyCheck(
        status="ok", detail=f"a run is writing the warehouse (pid {holder}); the API reads snapshots and is unaffected",
        data={"holder_pid": holder},
    )


def _dagster_check(url: str | None) -> DependencyCheck:
    if not url:
        return DependencyCheck(status="not_configured", detail="DAGSTER_WEBSERVER_URL is not set")
    import requests

    try:
        response = requests.get(url.rstrip("/") + "/server_info", timeout=1.0)
        response.raise_for_status()
    except requests.RequestException as exc:
        return DependencyCheck(status="error", detail=f"Dagster webserver unreachable: {type(exc).__name__}")
    return DependencyCheck(status="ok", detail="Dagster webserver answers", data=_dagster_version(response))


def _dagster_version(response) -> dict:
    try:
        return {"dagster_version": response.json().get("dagster_version")}
    except ValueError:
        return {}


def _mlflow_check(mlflow_dir: Path) -> DependencyCheck:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return DependencyCheck(status="ok", detail="remote tracking server configured (not probed by the API)")
    if (mlflow_dir / "mlflow.db").exists() or (mlflow_dir / "runs").is_dir():
        return DependencyCheck(status="ok", detail="local MLflow store present")
    return DependencyCheck(status="warning", detail="no local MLflow store yet: run the weekly research job")


def _disk_check(folder: Path) -> DependencyCheck:
    target = folder if folder.exists() else folder.parent
    usage = shutil.disk_usage(target)
    data = {"free_bytes": usage.free, "total_bytes": usage.total}
    if usage.free < CRITICAL_DISK_BYTES:
        return DependencyCheck(status="error", detail=f"{usage.free >> 20} MiB free", data=data)
    if usage.free < LOW_DISK_BYTES:
        return DependencyCheck(status="warning", detail=f"{usage.free >> 20} MiB free", data=data)
    return DependencyCheck(status="ok", detail=f"{usage.free >> 30} GiB free", data=data)


def _freshness_check(snapshot: Snapshot | None, settings) -> DependencyCheck:
    if snapshot is None or snapshot.manifest.as_of is None:
        return DependencyCheck(status="error", detail="no data")
    lag = _lag_hours(snapshot, settings)
    threshold = settings.data_freshness_threshold_hours
    data = {"lag_trading_hours": lag, "threshold_hours": threshold, "last_date": snapshot.manifest.as_of.isoformat()}
    if lag is None or lag > threshold:
        return DependencyCheck(status="warning", detail=f"data is STALE: {lag} trading hours old", data=data)
    return DependencyCheck(status="ok", detail=f"data is fresh: {lag} trading hours old", data=data)

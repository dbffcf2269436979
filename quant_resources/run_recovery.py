"""Crash recovery: runs that died without telling Dagster (SIGKILL, the OOM killer, a power cut,
a container eviction) stay `STARTED` forever and keep their `duckdb_warehouse` pool slot, so every
later run waits on it. `recover_dead_runs` finds them, marks them failed and frees their slots.

A run's process is the pid Dagster stamps on its `RUN_START` event (the in-process executor of
`run_daily`, `run_backtest` and `dagster asset materialize`, or the run worker of a launched run)
or the `quant/pid` tag. The process is gone when no process has that pid, it is a zombie, or the
process holding the pid started after the run did (the pid was reused). Only runs of this host
are judged: a DAGSTER_HOME shared between machines needs Dagster's run monitoring instead.

Dagster's own run monitoring (`dagster.yaml`, active while `dagster dev` / the daemon runs)
covers runs stuck in STARTING or CANCELING and frees the slots of finished runs; it cannot
check the health of a started run under the default launcher, which is what this module does.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

PID_TAG = "quant/pid"
HOST_TAG = "quant/host"
_LIVE_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def run_tags() -> dict[str, str]:
    """Tags that name the process and host executing a run (add them to in-process runs)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime"):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_alive(pid: int, started_before: float | None = None) -> bool:
    """Whether `pid` is a live (non-zombie) process that existed at `started_before` (epoch s)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if fields[0] in ("Z", "X"):
            return False
        if started_before is not None:
            created = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
            return created <= started_before + 1.0
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_process(instance: DagsterInstance, run_id: str, tags: dict[str, str]) -> tuple[int | None, float | None]:
    """(pid, start timestamp) of a run from its tags or its RUN_START event."""
    starts = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    started_at = starts[0].timestamp if starts else None
    if PID_TAG in tags:
        return int(tags[PID_TAG]), started_at
    if starts and starts[0].dagster_event is not None and starts[0].dagster_event.pid:
        return int(starts[0].dagster_event.pid), started_at
    return None, started_at


def recover_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every STARTED / CANCELING run whose process is gone and free the concurrency
    slots (and pending step claims) it holds; also free slots still held by finished runs.
    Returns the ids of the runs marked failed."""
    host = socket.gethostname()
    recovered: list[str] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=_LIVE_STATUSES)):
        if run.tags.get(HOST_TAG, host) != host:
            continue
        pid, started_at = _run_process(instance, run.run_id, dict(run.tags))
        if pid is None or process_alive(pid, started_at):
            continue
        instance.report_run_failed(
            run, message=f"process {pid} died without reporting (killed?): marked failed by quant run recovery"
        )
        recovered.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = set(storage.get_concurrency_run_ids())
        runs = instance.get_runs(filters=RunsFilter(run_ids=list(holders))) if holders else []
        alive = {r.run_id for r in runs if not r.is_finished}
        for run_id in sorted((holders - alive) | set(recovered)):
            storage.free_concurrency_slots_for_run(run_id)
    return recovered


def recover_and_report(instance: DagsterInstance) -> list[str]:
    """`recover_dead_runs`, printing one line when it recovered anything."""
    recovered = recover_dead_runs(instance)
    if recovered:
        print(
            f"recovered {len(recovered)} run(s) whose process died without telling Dagster: marked failed, "
            f"pool slots freed ({', '.join(r[:8] for r in recovered)})",
            flush=True,
        )
    return recovered

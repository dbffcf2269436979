"""Issue 15 item 1, unit level: `recover_dead_runs` fails STARTED runs whose process is gone and
frees their pool slots; a run whose process lives is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from quant_resources.run_recovery import PID_TAG, process_alive, recover_dead_runs

POOL = "duckdb_warehouse"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance: DagsterInstance, pid: int) -> str:
    run = instance.add_run(DagsterRun(job_name="daily_job", run_id=str(uuid.uuid4()),
                                      status=DagsterRunStatus.STARTED, tags={PID_TAG: str(pid)}))
    instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "prices")
    return run.run_id


def test_dead_runs_are_failed_and_their_slots_freed(dagster_home):
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.run_monitoring_settings["enabled"] and instance.run_monitoring_settings["start_timeout_seconds"]
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        dead = _started_run(instance, _dead_pid())
        assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        assert recover_dead_runs(instance) == [dead]
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        alive = _started_run(instance, os.getpid())
        assert recover_dead_runs(instance) == []
        assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED


def test_process_alive():
    assert process_alive(os.getpid())
    assert not process_alive(_dead_pid())
    assert not process_alive(os.getppid(), started_before=0.0)  # existed only after the epoch's first second

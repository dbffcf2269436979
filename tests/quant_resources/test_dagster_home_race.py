"""Issue 15 item 2: two processes starting together on a brand-new DAGSTER_HOME both succeed:
the storage is created once, under a file lock, by whichever gets there first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3
WORKER = """
import sys, time, traceback
from dagster import DagsterInstance
from quant_resources.dagster_home import prepare_dagster_home
base, start = sys.argv[1], float(sys.argv[2])
failures = 0
for k in range(int(sys.argv[3])):
    time.sleep(max(0.0, start + 1.0 * k - time.time()))
    home = f"{base}/home{k}"
    try:
        prepare_dagster_home(home)
        with DagsterInstance.from_config(home) as instance:
            instance.get_runs()
            instance.event_log_storage.get_concurrency_info("duckdb_warehouse")
            instance.schedule_storage.all_instigator_state()
    except Exception:
        failures += 1
        traceback.print_exc()
print("failures", failures)
sys.exit(1 if failures else 0)
"""


@pytest.mark.slow
def test_two_processes_on_a_fresh_home_both_succeed(tmp_path):
    start = time.time() + 4.0  # both workers import dagster first, then start each trial together
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(start), str(TRIALS)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
    for k in range(TRIALS):
        assert (tmp_path / f"home{k}" / "history" / "runs.db").exists()

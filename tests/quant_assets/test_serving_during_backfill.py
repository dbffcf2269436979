"""The API answers continuously while a backfill writes the warehouse its snapshot came from:
0 errors, and the backfill (a writer in another process) succeeds and publishes a new snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quant_api.app import create_app
from quant_resources.settings import PlatformSettings
from quant_resources.snapshots import SERVING_TABLES, SnapshotPublisher
from tests.conftest import ROOT

PATHS = ["/api/v1/quant/rankings?limit=20", "/api/v1/quant/portfolio", "/api/v1/quant/risk/metrics",
         "/api/v1/quant/weekly/trades", "/api/v1/quant/dashboard/summary", "/api/v1/ready", "/api/v1/health/deep"]


@pytest.mark.slow
def test_api_answers_while_a_backfill_writes_the_warehouse(daily_graph, tmp_path):
    warehouse = tmp_path / "quant.duckdb"
    shutil.copy(daily_graph.warehouse_path, warehouse)
    serving = tmp_path / "serving"
    first = SnapshotPublisher(serving).publish("before-backfill", warehouse, SERVING_TABLES)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "backfill.log").open("w+")
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.quant_assets.serving_backfill_job", str(warehouse), str(serving),
         str(tmp_path / "cache"), "2022-01-03", "2022-12-30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    errors, answered, snapshots, lock_holders = [], 0, set(), set()
    app = create_app(PlatformSettings(warehouse_dir=tmp_path, serving_dir=serving))
    with TestClient(app) as client:
        deadline = time.monotonic() + 240
        while writer.poll() is None and time.monotonic() < deadline:
            for path in PATHS:
                response = client.get(path)
                answered += 1
                if response.status_code != 200:
                    errors.append(f"{path}: {response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                snapshots.add(body["snapshot_id"])
                if path.endswith("deep"):
                    lock_holders.add(body["checks"]["warehouse_writer_lock"]["data"].get("holder_pid"))
            time.sleep(0.05)
        writer.wait(timeout=60)
        final = client.get("/api/v1/ready").json()["snapshot_id"]
    log.seek(0)
    output = log.read()
    assert writer.returncode == 0, output[-3000:]
    assert "backfill=True publish=True" in output
    assert errors == []
    assert answered > 50
    assert first.snapshot_id in snapshots and final != first.snapshot_id
    assert writer.pid in lock_holders or lock_holders == {None}, lock_holders

"""Issue 15 item 8: a reader in another process (a notebook holding a read-only connection)
never fails a warehouse write: `Warehouse.connect` retries with backoff, and when the lock
outlives the timeout the error names the holder's PID."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from quant_resources.warehouse import Warehouse, WarehouseError

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""
FRAME = pl.DataFrame({"date": [date(2024, 1, 2)], "ticker": ["A"], "value": [1.0]})


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_write_waits_for_a_reader_in_another_process(tmp_path):
    wh = Warehouse(tmp_path / "quant.duckdb")
    wh.write("t", FRAME)
    holder = _hold(wh.path, 2.0)
    try:
        started = time.monotonic()
        assert Warehouse(wh.path, lock_timeout=60).write("t", FRAME) == 1
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=30)


def test_lock_held_past_the_timeout_names_the_holder_pid(tmp_path):
    wh = Warehouse(tmp_path / "quant.duckdb")
    wh.write("t", FRAME)
    holder = _hold(wh.path, 30.0)
    try:
        with pytest.raises(WarehouseError, match=rf"locked by another process \(PID {holder.pid}\).*1\.\ds"):
            Warehouse(wh.path, lock_timeout=1.0).write("t", FRAME)
    finally:
        holder.kill()
        holder.wait(timeout=30)

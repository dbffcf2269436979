"""Issue 15 item 1: a `kill -9`'d `run_daily` never blocks the next one. The rerun finds the
dead run (STARTED, process gone), marks it failed, frees its pool slot and finishes with the
same warehouse contents as a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from quant_resources.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
DAY = "2024-06-28"


def _env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MARKET_DATA", "SIM_", "WAREHOUSE", "RUN_", "INTRADAY_"))}
    env.update(DAGSTER_HOME=str(base / "home"), WAREHOUSE_DIR=str(base / "warehouse"), SIM_N_TICKERS="12",
               SIM_SEED="7", INTRADAY_HISTORY_DAYS="1", INTRADAY_SYMBOLS="SPY", INTRADAY_INTERVALS="1h",
               PYTHONUNBUFFERED="1")
    return env


def _run_daily(base: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quant_assets.run_daily", "--date", DAY, "--history-days", "0"], env=_env(base), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _tables(base: Path) -> dict[str, pl.DataFrame]:
    wh = Warehouse(base / "warehouse" / "quant.duckdb")
    frames = {t: wh.read(t) for t in wh.tables()}
    return {t: f.sort(f.columns) for t, f in frames.items()}


def _wait_for_claimed_slot(home: Path, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    from dagster import DagsterInstance

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if (home / ".storage_ready").exists():  # created under its lock by run_daily
            with DagsterInstance.from_config(str(home)) as instance:
                if instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots:
                    return
        time.sleep(0.1)
    raise AssertionError(f"run_daily never claimed a pool slot (exit {proc.poll()})")


@pytest.mark.slow
def test_sigkilled_run_daily_does_not_block_the_rerun(tmp_path):
    clean = _run_daily(tmp_path / "clean")
    killed = _run_daily(tmp_path / "killed")
    _wait_for_claimed_slot(tmp_path / "killed" / "home", killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)

    started = time.monotonic()
    rerun = _run_daily(tmp_path / "killed")
    try:
        out, _ = rerun.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(rerun.pid, signal.SIGKILL)
        out, _ = rerun.communicate()
        raise AssertionError(f"the rerun hung behind the killed run's pool slot:\n{out[-3000:]}")
    finally:
        clean_out, _ = clean.communicate(timeout=240)
    assert time.monotonic() - started < 150
    assert clean.returncode == 0, clean_out[-3000:]
    assert rerun.returncode == 0, out[-3000:]
    recovered = [line for line in out.splitlines() if line.startswith("recovered")]
    assert len(recovered) == 1 and "marked failed" in recovered[0], out[-3000:]
    expected, got = _tables(tmp_path / "clean"), _tables(tmp_path / "killed")
    assert expected.keys() == got.keys() and "prices" in got
    for table, frame in expected.items():
        assert got[table].equals(frame), table

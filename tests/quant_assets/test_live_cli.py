"""Seed 004 §11 end to end through the `quant` CLI (small), SIGINT resume, kill -9 recovery."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from quant_assets.cli import main
from quant_assets.live_runner import LiveOptions, build_self_trainer, run_live
from quant_lib.execution import duplicate_client_order_ids
from quant_resources.ledger import FileLedgerSink
from quant_resources.settings import get_settings
from quant_resources.state import SystemStateManager

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "wh"))
    get_settings.cache_clear()
    yield tmp_path / "wh"
    get_settings.cache_clear()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_quant", False)]:
        root.removeHandler(handler)
        handler.close()


def _log(warehouse: Path) -> str:
    return (warehouse / "logs" / "quant.log").read_text()


def _quant(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_import_is_light():
    code = ("import sys, quant_assets.cli; "
            "print(sorted(m for m in ('torch', 'dagster', 'plotly', 'alpaca', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_e2e_train_then_backtest_writes_dashboard(warehouse, monkeypatch):
    monkeypatch.setenv("COMPUTE_BACKEND", "serial")
    result = _quant("train", "--model", "all", "--assets", "AAPL", "--interval", "5m", "--epochs", "1", "--bars", "400")
    # `quant train` materialized model_checkpoints: one (week, model) partition per model in the model store
    stored = sorted(p.parent.parent.name for p in (warehouse / "models").glob("*/2025-01-04/checkpoint.pt"))
    assert stored == ["live_itransformer", "live_lstm", "live_momentum", "live_transformer", "ppo"]
    assert [line.split()[0] for line in result.output.splitlines() if " v1 " in line] == stored
    assert not (warehouse / "models" / "live").exists()  # no side checkpoints
    result = _quant("backtest", "--strategy", "ensemble", "--assets", "AAPL", "--bars", "400", "--capital", "100000")
    metrics = {line.split()[0]: float(line.split()[1]) for line in result.output.splitlines() if line[:1].isalpha()
               and len(line.split()) == 2 and line.split()[0] != "dashboard:"}
    assert metrics["sharpe_ratio"] != 0 and metrics["max_drawdown"] != 0 and metrics["fills"] > 0
    html = (warehouse / "reports" / "backtest_ensemble_AAPL.html").read_text()
    assert html.count("plotly") > 10 and "Drawdown" in html
    assert "Loaded live_lstm version 1 (week 2025-01-04, 5m bars)" in _log(warehouse)


@pytest.mark.slow
def test_e2e_tight_risk_limits_halt_trading(warehouse, monkeypatch):
    # An untrained net forecasts exactly zero (its head starts at zero) and would never trade.
    monkeypatch.setenv("COMPUTE_BACKEND", "serial")
    _quant("train", "--model", "transformer", "--assets", "AAPL", "--interval", "5m", "--epochs", "1", "--bars", "400")
    _quant("backtest", "--strategy", "ml", "--assets", "AAPL", "--bars", "300", "--max-drawdown", "0.0001",
           "--daily-loss-limit", "0.0001")
    log = _log(warehouse)
    assert "Max drawdown breached" in log or "Daily loss limit breached" in log
    assert "Risk breached; skipping signal" in log


@pytest.mark.slow
def test_e2e_aggressive_retrain(warehouse):
    _quant("live", "--bars", "130", "--retrain-interval", "1000", "--retrain-min-samples", "110",
           "--sharpe-threshold", "1000000", "--checkpoint-interval", "0")
    log = _log(warehouse)
    assert "Retrain triggered at bar 110 | reasons: sharpe (" in log
    assert "Retrain 'transformer' ACCEPTED" in log or "Retrain 'transformer' REJECTED" in log


def _spawn(warehouse: Path, bars: int) -> subprocess.Popen:
    """`quant live` as a real process (a fork of pytest would inherit torch's JIT state and can hang)."""
    args = [sys.executable, "-m", "quant_assets.cli", "live", "--bars", str(bars), "--checkpoint-interval", "10",
            "--no-retrain", "--keep-positions", "--seed", "5"]
    env = {**os.environ, "WAREHOUSE_DIR": str(warehouse)}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


OPTIONS = dict(bars=int(os.environ.get("QUANT_KILL_BARS", "260")), checkpoint_interval=10, retrain=False,
               close_on_exit=False, seed=5)
"""The suite kills 3 times over 260 bars; the full check is
``QUANT_KILLS=20 QUANT_KILL_BARS=1200 pytest tests/quant_assets/test_live_cli.py -k kill -s``."""


@pytest.mark.slow
def test_e2e_sigint_saves_state_and_restart_resumes(warehouse, caplog):
    options = LiveOptions(**OPTIONS)
    process = _spawn(warehouse, options.bars)
    state_file = warehouse / "state" / "system_state.pt"
    deadline = time.time() + 120
    while time.time() < deadline and len(FileLedgerSink(warehouse / "ledger", "live").segments()) < 8:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 0
    saved = SystemStateManager(state_file).load()
    stopped_at = saved["bar_counter"]
    assert 80 <= stopped_at < options.bars
    restarted = build_self_trainer(options, warehouse)
    restarted.register_signals = False
    with caplog.at_level(logging.INFO):
        restarted.start()
    assert f"Resumed from checkpoint at bar_counter={stopped_at}" in caplog.text
    assert restarted.strategy.weights == pytest.approx(saved["ensemble"]["weights"])
    restarted.shutdown()
    trainer = run_live(options, warehouse, register_signals=False)
    assert trainer.bar_counter == options.bars
    assert duplicate_client_order_ids(FileLedgerSink(warehouse / "ledger", "live").events()) == []


def _killed_then_finished(warehouse: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    options = LiveOptions(**OPTIONS)
    counters = []
    state_file = warehouse / "state" / "system_state.pt"

    def stamp():
        return state_file.stat().st_mtime_ns if state_file.exists() else 0

    for _ in range(kills):
        process = _spawn(warehouse, options.bars)
        saves, last, deadline = rng.randint(1, 3), stamp(), time.time() + 120
        while saves and time.time() < deadline:
            if stamp() != last:
                saves, last = saves - 1, stamp()
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the next checkpoint interval
        process.kill()
        process.wait(timeout=60)
        state = SystemStateManager(warehouse / "state" / "system_state.pt").load()
        counters.append(0 if state is None else state["bar_counter"])
    assert counters == sorted(counters)
    assert any(0 < c < options.bars for c in counters), f"no kill landed mid-run: {counters}"
    print("bar_counter after each kill:", counters)
    return run_live(options, warehouse, register_signals=False)


@pytest.mark.slow
def test_kill_9_at_random_moments_recovers_exactly(warehouse, tmp_path):
    reference = run_live(LiveOptions(**OPTIONS), tmp_path / "reference", register_signals=False)
    recovered = _killed_then_finished(warehouse, kills=int(os.environ.get("QUANT_KILLS", "3")), seed=1)
    assert recovered.bar_counter == reference.bar_counter == OPTIONS["bars"]
    assert recovered.executor.get_portfolio_state()["equity"] == pytest.approx(
        reference.executor.get_portfolio_state()["equity"], rel=1e-12)
    events = FileLedgerSink(warehouse / "ledger", "live").events()
    assert duplicate_client_order_ids(events) == []
    reference_events = FileLedgerSink(tmp_path / "reference" / "ledger", "live").events()
    assert [e["client_order_id"] for e in events if e["event"] == "fill"] == [
        e["client_order_id"] for e in reference_events if e["event"] == "fill"]

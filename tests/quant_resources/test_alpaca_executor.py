"""LiveExecutor against a fake Alpaca on 127.0.0.1: exactly one order per client_order_id under 429,
504-after-accepting, duplicate-id 422 and timeouts; keys, backoff, emergency stop, reconcile."""

import atexit
import logging

import pytest

from quant_lib.execution import MemoryLedger, client_order_id, duplicate_client_order_ids
from quant_resources.brokers.alpaca import EmergencyStop, LiveExecutor, ReconcileError
from tests.quant_resources.fake_alpaca import FakeAlpaca

SECRET = "fake-secret-value-123"


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "fake-key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


@pytest.fixture
def fake(monkeypatch, keys):
    with FakeAlpaca(delay=0.6) as server:
        monkeypatch.setenv("APCA_API_BASE_URL", server.url)
        yield server


def _executor(**kwargs):
    sleeps = []
    executor = LiveExecutor(timeout=0.3, backoff_base=0.01, sleep=sleeps.append, ledger=MemoryLedger(), **kwargs)
    executor.sleeps = sleeps
    return executor


def test_missing_keys_raise(monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="APCA_API_KEY_ID"):
        LiveExecutor().connect()


@pytest.mark.parametrize("fault", ["ok", "429", "504", "timeout"])
def test_exactly_one_order_per_client_order_id(fake, fault, caplog):
    executor = _executor()
    with caplog.at_level(logging.DEBUG):
        executor.connect()
        fake.faults = [fault]
        coid = client_order_id("ensemble|2025-01-02T15:00", "AAPL", "open")
        record = executor.submit_order("AAPL", "buy", 10, 100.0, coid)
    assert len(fake.orders_for(coid)) == 1
    assert record["status"] == "filled" and record["qty"] == 10
    assert record["adopted"] == (fault in ("504", "timeout"))
    assert fake.positions == {"AAPL": 10.0}
    assert SECRET not in caplog.text


def test_replay_after_crash_adopts_instead_of_duplicating(fake):
    coid = client_order_id("ensemble|2025-01-02T15:05", "MSFT", "open")
    first = _executor()
    first.connect()
    first.submit_order("MSFT", "sell", 3, 100.0, coid)
    restarted = _executor()
    restarted.connect()
    record = restarted.submit_order("MSFT", "sell", 3, 100.0, coid)
    assert record["adopted"] and record["order_id"] == fake.orders_for(coid)[0]["id"]
    assert len(fake.orders_for(coid)) == 1 and fake.posts == 2
    assert duplicate_client_order_ids(first.ledger.events) == []


def test_order_over_max_size_is_rejected_before_sending(fake):
    executor = _executor(max_order_size=500.0)
    executor.connect()
    with pytest.raises(ValueError, match="max_order_size"):
        executor.submit_order("AAPL", "buy", 10, 100.0, "qp-x")
    assert fake.posts == 0


def test_connect_backs_off_then_emergency_stops(fake):
    fake.account_faults = 2
    executor = _executor(max_retries=3)
    executor.connect()
    assert executor.sleeps == [0.01, 0.02]
    fake.account_faults = 10
    stopped = _executor(max_retries=3)
    with pytest.raises(EmergencyStop):
        stopped.connect()
    assert stopped.emergency_stopped
    with pytest.raises(EmergencyStop):
        stopped.submit_order("AAPL", "buy", 1, 1.0, "qp-y")


def test_reconcile_fails_closed_then_adopts_when_overridden(fake):
    fake.positions = {"AAPL": 5.0}
    executor = _executor(expected_positions={"AAPL": 3.0})
    executor.connect()
    with pytest.raises(ReconcileError, match="AAPL: broker 5, local 3"):
        executor.reconcile()
    overridden = _executor(expected_positions={"AAPL": 3.0}, allow_mismatch=True)
    overridden.connect()
    report = overridden.reconcile()
    assert report["mismatches"] and overridden.expected_positions == {"AAPL": 5.0}
    matching = _executor(expected_positions={"AAPL": 5.0})
    matching.connect()
    assert matching.reconcile()["mismatches"] == []


def test_live_loop_crash_and_replay_on_fake_alpaca_never_doubles_an_order(fake, tmp_path):
    from quant_lib.live import LiveConfig, SelfTrainer, bar_groups, synthetic_bars
    from quant_lib.strategies import MovingAverageCrossStrategy
    from quant_resources.state import SystemStateManager

    bars = bar_groups(synthetic_bars(["AAPL"], n_bars=80, seed=4))
    store = SystemStateManager(tmp_path / "system_state.pt")

    def started_loop(allow_mismatch: bool) -> SelfTrainer:
        executor = _executor(allow_mismatch=allow_mismatch)
        executor.connect()
        loop = SelfTrainer({}, MovingAverageCrossStrategy(fast=3, slow=8), executor, state_store=store,
                           config=LiveConfig(checkpoint_interval=20, retrain_enabled=False, use_stops=False,
                                             close_on_shutdown=False), register_signals=False)
        loop.start()
        return loop

    crashed = started_loop(False)
    for bar in bars[:50]:
        crashed.process_bar(bar)  # last checkpoint at bar 40, then a "crash" (no shutdown)
    atexit.unregister(crashed.shutdown)
    before = len(fake.orders)
    assert before > 2
    with pytest.raises(ReconcileError):
        started_loop(False)  # the broker traded after the checkpoint: fail closed
    resumed = started_loop(True)
    assert resumed.bar_counter == 40
    for bar in bars:
        resumed.process_bar(bar)
    resumed.shutdown()
    ids = [o["client_order_id"] for o in fake.orders]
    assert len(ids) == len(set(ids)) and len(ids) > before
    assert fake.posts > len(ids)  # replayed bars 41-50 re-sent their ids and were adopted

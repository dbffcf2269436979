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


def _loop(store, sink, executor_kwargs=None, **config):
    from quant_lib.live import LiveConfig, SelfTrainer
    from quant_lib.strategies import MovingAverageCrossStrategy

    executor = _executor(**(executor_kwargs or {}))
    executor.connect()
    settings = {"checkpoint_interval": 20, "retrain_enabled": False, "use_stops": False, "close_on_shutdown": False, **config}
    loop = SelfTrainer({}, MovingAverageCrossStrategy(fast=3, slow=8), executor, state_store=store, ledger_sink=sink,
                       config=LiveConfig(**settings), register_signals=False)
    loop.start()
    return loop


def _ledger_fills_match_broker(sink, fake) -> None:
    """Every fill the broker made is in the ledger once: per symbol the ledger's fills sum to the
    broker's position, and no (order id, cumulative qty) appears twice."""
    events = sink.events()
    fills = [e for e in events if e["event"] == "fill"]
    assert len({e["fill_id"] for e in fills}) == len(fills)
    net: dict[str, float] = {}
    for fill in fills:
        net[fill["symbol"]] = net.get(fill["symbol"], 0.0) + (fill["qty"] if fill["side"] == "buy" else -fill["qty"])
    assert {s: q for s, q in net.items() if abs(q) > 1e-9} == {s: q for s, q in fake.positions.items() if q}
    assert duplicate_client_order_ids(events) == []


def test_live_loop_crash_and_replay_on_fake_alpaca_never_doubles_an_order(fake, tmp_path):
    from quant_lib.live import bar_groups, synthetic_bars
    from quant_resources.ledger import FileLedgerSink
    from quant_resources.state import SystemStateManager

    bars = bar_groups(synthetic_bars(["AAPL"], n_bars=80, seed=4))
    store, sink = SystemStateManager(tmp_path / "system_state.pt"), FileLedgerSink(tmp_path / "ledger", "alpaca")
    crashed = _loop(store, sink)
    for bar in bars[:50]:
        crashed.process_bar(bar)  # last checkpoint at bar 40, then a "crash" (no shutdown)
    atexit.unregister(crashed.shutdown)
    before = len(fake.orders)
    assert before > 2
    fake.positions["AAPL"] += 1  # a trade the ledger cannot explain: fail closed
    with pytest.raises(ReconcileError, match="AAPL"):
        _loop(store, sink)
    fake.positions["AAPL"] -= 1
    resumed = _loop(store, sink)  # adopts the orders (and fills) sent after the checkpoint
    assert resumed.bar_counter == 40
    for bar in bars:
        resumed.process_bar(bar)
    resumed.shutdown()
    ids = [o["client_order_id"] for o in fake.orders]
    assert len(ids) == len(set(ids)) and len(ids) > before
    assert fake.posts > len(ids) - before  # replayed bars 41-50 re-sent nothing new: their ids were adopted
    _ledger_fills_match_broker(sink, fake)


def test_live_loop_polls_orders_that_fill_later_and_in_parts(fake, tmp_path):
    from quant_lib.live import bar_groups, synthetic_bars
    from quant_resources.ledger import FileLedgerSink

    fake.hold = True
    sink = FileLedgerSink(tmp_path / "ledger", "alpaca")
    loop = _loop(None, sink, checkpoint_interval=10)
    bars = bar_groups(synthetic_bars(["AAPL", "MSFT"], n_bars=60, seed=4, bars_per_day=30))
    for number, bar in enumerate(bars):
        loop.process_bar(bar)
        for order in fake.open_orders():
            assert sum(o["symbol"] == order["symbol"] for o in fake.open_orders()) == 1, "one working order per symbol"
        if number % 3 == 1:
            fake.fill(qty=2.0, price=100.0 + number)  # part of every open order, once in three bars
    loop.shutdown()
    events = sink.events()
    partial = [e for e in events if e["event"] == "status" and e["status"] == "partially_filled"]
    assert partial and any(e["event"] == "fill" and e["cum_qty"] > e["qty"] for e in events)
    closed = {e["client_order_id"]: e["status"] for e in events if e["event"] == "status" and e["closed"]}
    day_one = {o["client_order_id"] for o in fake.orders if o["submitted_at"] and o["client_order_id"] in
               {e["client_order_id"] for e in events if e["event"] == "order" and str(e["timestamp"]).startswith("2025-01-02")}}
    assert day_one and all(closed.get(c) in ("filled", "canceled") for c in day_one), "end of day: day-one orders closed out"
    assert "canceled" in closed.values() and fake.deletes > 0
    _ledger_fills_match_broker(sink, fake)
    assert loop.executor.expected_positions == {s: q for s, q in fake.positions.items() if q}


def test_poll_falls_back_to_client_id_and_keep_rule_sends_gtc(fake):
    executor = _executor(unfilled_at_close="keep")
    executor.connect()
    fake.hold = True
    record = executor.submit_order("AAPL", "buy", 10, 100.0, "qp-keep", "2025-01-02T15:00:00")
    assert record["status"] == "accepted" and record["qty"] == 0 and fake.orders[0]["time_in_force"] == "gtc"
    fake.fill("qp-keep", qty=4, price=99.0)
    fake.poll_faults = ["504"]
    fills = executor.poll("2025-01-02T15:05:00")
    assert [(f["qty"], f["price"]) for f in fills] == [(4.0, 99.0)]
    assert executor.close_session("2025-01-03") == [] and fake.deletes == 0, "keep: nothing canceled overnight"
    assert executor.open_symbols() == {"AAPL"}
    fake.fill("qp-keep", price=101.0)
    assert [f["qty"] for f in executor.poll()] == [6.0] and executor.poll() == []
    assert executor.expected_positions == {"AAPL": 10.0} and executor.open_symbols() == set()
    assert executor.tracker.cash == pytest.approx(-(4 * 99.0 + 6 * 101.0))


def test_daily_broker_recovers_a_crash_between_broker_fill_and_ledger_write(fake, tmp_path):
    """The tracker file is the commit point: a crash after the broker filled (or even accepted) an
    order but before the tracker was saved is re-derived from the broker, once."""
    from quant_resources.broker import BrokerResource

    broker = BrokerResource(kind="alpaca", state_dir=str(tmp_path / "state"))
    fake.hold = True
    before_submit = broker.live_executor()
    broker.save_alpaca(before_submit)
    empty = broker.alpaca_file.read_bytes()
    trader = broker.live_executor()
    trader.submit_order("AAPL", "buy", 10, 100.0, "qp-day1-aapl", "2024-06-03")
    broker.save_alpaca(trader)
    broker.alpaca_file.write_bytes(empty)  # crash: the order reached the broker, the tracker never saw it
    fake.fill("qp-day1-aapl", qty=6, price=99.0)
    recovered = broker.live_executor()
    assert recovered.sync() == 1 and recovered.expected_positions == {"AAPL": 6.0}
    broker.save_alpaca(recovered)
    saved = broker.alpaca_file.read_bytes()
    fake.fill("qp-day1-aapl", price=101.0)
    again = broker.live_executor()
    again.poll()
    broker.save_alpaca(again)  # ledger segment written ...
    broker.alpaca_file.write_bytes(saved)  # ... then a crash before the tracker was saved
    final = broker.live_executor()  # drops the orphan segment and polls the fill again
    final.sync()
    broker.save_alpaca(final)
    fills = [e for e in broker.alpaca_ledger().events() if e["event"] == "fill"]
    assert [(f["qty"], f["price"]) for f in fills] == [(6.0, 99.0), (4.0, 101.0)]
    assert final.expected_positions == fake.positions == {"AAPL": 10.0}
    assert len(fake.orders) == 1 and duplicate_client_order_ids(broker.alpaca_ledger().events()) == []


def test_daily_keep_rule_leaves_orders_working_and_skips_their_tickers(fake, tmp_path):
    from datetime import date

    import polars as pl

    from quant_resources.broker import BrokerResource

    broker = BrokerResource(kind="alpaca", state_dir=str(tmp_path / "state"), unfilled_at_close="keep")
    fake.hold = True
    cash = pl.DataFrame({"date": [date(2024, 6, 3)], "ticker": ["CASH"], "shares": [100_000.0]})
    trades = pl.DataFrame({"ticker": ["AAA", "BBB"], "side": ["BUY", "BUY"], "shares": [10, 5], "price": [100.0, 100.0]})
    first, mismatches = broker.alpaca_orders(date(2024, 6, 3), trades.head(1), cash)
    assert mismatches == [] and first["status"].to_list() == ["accepted"] and fake.orders[0]["time_in_force"] == "gtc"
    fake.clock = {**fake.clock, "is_open": False, "timestamp": "2025-01-03T21:00:01Z"}  # the session is over
    second, _ = broker.alpaca_orders(date(2024, 6, 4), trades, cash)
    assert dict(second.select("ticker", "status").iter_rows()) == {"AAA": "skipped", "BBB": "accepted"}
    assert fake.deletes == 0 and len(fake.open_orders()) == 2, "keep: nothing cancelled, nothing doubled"
    fake.fill(first["client_order_id"][0], price=98.0)
    events, still_open = broker.alpaca_fill_events(date(2024, 6, 3), first["client_order_id"].to_list())
    assert [(e["symbol"], e["qty"], e["price"]) for e in events] == [("AAA", 10.0, 98.0)] and still_open == 0


def test_unconfirmed_order_is_looked_up_then_closed_not_found(fake):
    executor = _executor(max_retries=2)
    executor.connect()
    fake.faults = ["429", "429"]
    record = executor.submit_order("AAPL", "buy", 1, 100.0, "qp-lost", "2025-01-02T15:00:00")
    assert record["status"] == "unconfirmed" and "not confirmed" in record["reason"] and fake.orders == []
    assert executor.open_symbols() == {"AAPL"}, "no second order while its fate is unknown"
    assert executor.poll() == [] and executor.open_symbols() == set()
    closed = [e for e in executor.ledger.events if e["event"] == "status"]
    assert [(e["status"], e["closed"]) for e in closed] == [("not_found", True)]


def test_live_loop_crash_with_partially_filled_orders_resumes_without_loss(fake, tmp_path):
    from quant_lib.live import bar_groups, synthetic_bars
    from quant_resources.ledger import FileLedgerSink
    from quant_resources.state import SystemStateManager

    fake.hold = True
    bars = bar_groups(synthetic_bars(["AAPL", "MSFT"], n_bars=40, seed=4, bars_per_day=100))
    store, sink = SystemStateManager(tmp_path / "system_state.pt"), FileLedgerSink(tmp_path / "ledger", "alpaca")
    crashed = _loop(store, sink, checkpoint_interval=10)
    for number, bar in enumerate(bars[:25]):
        crashed.process_bar(bar)
        fake.fill(qty=1.0, price=100.0 + number)  # every open order fills 1 share a bar
    atexit.unregister(crashed.shutdown)  # crash at bar 25: fills of bars 21-25 never reached the ledger
    assert fake.open_orders(), "orders are still working at the crash"
    fake.fill(qty=1.0, price=130.0)  # and the broker keeps filling while the loop is down
    resumed = _loop(store, sink, checkpoint_interval=10)
    assert resumed.bar_counter == 20
    for bar in bars:
        resumed.process_bar(bar)
    resumed.shutdown()
    _ledger_fills_match_broker(sink, fake)
    ids = [o["client_order_id"] for o in fake.orders]
    assert len(ids) == len(set(ids))


def test_close_all_cancels_working_orders_before_flattening(fake):
    executor = _executor()
    executor.connect()
    executor.submit_order("AAPL", "buy", 5, 100.0, "qp-held", "2025-01-02T15:00:00")
    fake.hold = True
    executor.submit_order("MSFT", "buy", 7, 100.0, "qp-working", "2025-01-02T15:05:00")
    fake.fill("qp-working", qty=3)
    records = executor.close_all_positions(timestamp="2025-01-02T15:10:00")
    statuses = {o["client_order_id"]: o["status"] for o in fake.orders}
    assert statuses["qp-working"] == "canceled" and executor.tracker.orders["qp-working"]["filled_qty"] == 3
    assert sorted((r["symbol"], r["side"], r["requested_qty"]) for r in records) == [("AAPL", "sell", 5.0), ("MSFT", "sell", 3.0)]


def test_unreadable_daily_tracker_names_the_file(fake, tmp_path):
    from quant_resources.broker import BrokerResource

    broker = BrokerResource(kind="alpaca", state_dir=str(tmp_path / "state"))
    broker.alpaca_file.parent.mkdir(parents=True)
    broker.alpaca_file.write_text("{truncated")
    with pytest.raises(RuntimeError, match="orders.json is unreadable"):
        broker.live_executor()

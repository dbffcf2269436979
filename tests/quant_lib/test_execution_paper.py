"""PaperExecutor: fills with slippage and commission, buying-power cap, P&L, idempotent client ids, ledger."""

import pytest

from quant_lib.execution import MemoryLedger, PaperExecutor, client_order_id, duplicate_client_order_ids


def _executor(**kwargs):
    return PaperExecutor(initial_capital=10_000.0, slippage_bps=10.0, commission_bps=5.0, **kwargs)


def test_buy_fills_with_slippage_and_commission():
    broker = _executor()
    fill = broker.submit_order("AAA", "buy", 10, 100.0)
    assert fill["status"] == "filled"
    assert fill["price"] == pytest.approx(100.1)
    assert fill["commission"] == pytest.approx(10 * 100.1 * 5e-4)
    assert broker.cash == pytest.approx(10_000 - 1001.0 - fill["commission"])
    broker.update_market_prices({"AAA": 110.0})
    state = broker.get_portfolio_state()
    assert state["positions"]["AAA"]["qty"] == 10
    assert state["unrealized_pnl"] == pytest.approx(10 * (110.0 - 100.1))
    assert state["equity"] == pytest.approx(broker.cash + 1100.0)


def test_insufficient_cash_reduces_quantity():
    broker = _executor()
    fill = broker.submit_order("AAA", "buy", 1_000, 100.0)
    assert fill["qty"] == pytest.approx(10_000 / (100.1 * (1 + 5e-4)))
    assert broker.cash == pytest.approx(0.0, abs=1e-6)
    assert broker.submit_order("BBB", "buy", 1, 50.0)["status"] == "rejected"


def test_round_trip_realizes_pnl_and_close_all():
    broker = _executor()
    broker.submit_order("AAA", "buy", 10, 100.0)
    broker.submit_order("BBB", "sell", 5, 200.0)
    fill = broker.submit_order("AAA", "sell", 4, 120.0)
    assert fill["realized_pnl"] == pytest.approx(4 * (120 * 0.999 - 100.1))
    records = broker.close_all_positions({"AAA": 120.0, "BBB": 180.0})
    assert {r["symbol"] for r in records} == {"AAA", "BBB"}
    assert broker.positions == {}
    expected_pnl = 10 * (120 * 0.999 - 100.1) + 5 * (200 * 0.999 - 180 * 1.001)
    assert broker.realized_pnl == pytest.approx(expected_pnl)
    assert broker.cash == pytest.approx(10_000 + expected_pnl - broker.commissions)


def test_bad_inputs_raise():
    broker = _executor()
    with pytest.raises(ValueError, match="price"):
        broker.submit_order("AAA", "buy", 1, 0.0)
    with pytest.raises(ValueError, match="qty"):
        broker.submit_order("AAA", "buy", -1, 10.0)
    with pytest.raises(ValueError, match="side"):
        broker.submit_order("AAA", "hold", 1, 10.0)


def test_same_client_order_id_fills_once_and_ledger_records_it():
    ledger = MemoryLedger()
    broker = _executor(ledger=ledger)
    coid = client_order_id("ensemble|2025-01-02T09:35", "AAA", "open")
    assert coid == client_order_id("ensemble|2025-01-02T09:35", "AAA", "open")
    first = broker.submit_order("AAA", "buy", 10, 100.0, client_order_id=coid)
    again = broker.submit_order("AAA", "buy", 10, 100.0, client_order_id=coid)
    assert again == first
    assert broker.positions["AAA"].qty == 10
    assert [e["event"] for e in ledger.events] == ["order", "fill"]
    assert duplicate_client_order_ids(ledger.events) == []
    restored = _executor()
    restored.load_state(broker.get_state())
    assert restored.submit_order("AAA", "buy", 10, 100.0, client_order_id=coid) == first
    assert restored.cash == pytest.approx(broker.cash)

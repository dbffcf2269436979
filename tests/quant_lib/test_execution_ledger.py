"""OrderTracker: status changes and partial fills recorded exactly once, the book follows the fills."""

import math

import pytest

from quant_lib.execution import OrderTracker, fill_increment


def _report(status, filled, avg, coid="qp-a", qty=10, side="buy", symbol="AAPL", order_id="o-1"):
    return {"id": order_id, "client_order_id": coid, "symbol": symbol, "side": side, "qty": str(qty),
            "status": status, "filled_qty": str(filled), "filled_avg_price": None if avg is None else str(avg)}


def test_fill_increment_recovers_each_partial_fill_price():
    assert fill_increment(0.0, 0.0, 4.0, 100.0) == (4.0, 100.0)
    qty, price = fill_increment(4.0, 100.0, 10.0, 101.2)  # 4 @ 100 then 6 @ 102
    assert qty == pytest.approx(6.0) and price == pytest.approx(102.0)
    assert fill_increment(10.0, 101.2, 10.0, 101.2) is None
    assert fill_increment(10.0, 101.2, 4.0, 100.0) is None  # a stale report adds nothing


def test_partial_fills_then_fill_recorded_once_each_and_book_follows():
    tracker = OrderTracker(positions={"AAPL": 5.0}, cash=0.0)
    events = tracker.track("qp-a", "AAPL", "buy", 10, "t0")
    sequence = [_report("accepted", 0, None), _report("partially_filled", 4, 100.0),
                _report("partially_filled", 4, 100.0), _report("filled", 10, 101.2), _report("filled", 10, 101.2),
                _report("partially_filled", 4, 100.0)]
    for report in sequence:
        events += tracker.apply(report, "t")
    kinds = [(e["event"], e.get("status") or e.get("qty")) for e in events]
    assert kinds[0][0] == "order"
    assert [k for k in kinds[1:]] == [("status", "accepted"), ("fill", 4.0), ("status", "partially_filled"),
                                      ("fill", pytest.approx(6.0)), ("status", "filled")]
    fills = [e for e in events if e["event"] == "fill"]
    assert [f["fill_id"] for f in fills] == ["o-1:4", "o-1:10"]
    assert fills[1]["price"] == pytest.approx(102.0)
    assert tracker.positions == {"AAPL": pytest.approx(15.0)}
    assert tracker.cash == pytest.approx(-(4 * 100.0 + 6 * 102.0))
    assert events[-1]["closed"] and tracker.open_orders() == []


def test_cancel_with_partial_fill_closes_out_and_never_reopens():
    tracker = OrderTracker()
    tracker.track("qp-a", "AAPL", "sell", 10)
    tracker.apply(_report("partially_filled", 3, 50.0, side="sell"))
    events = tracker.apply(_report("canceled", 3, 50.0, side="sell"))
    assert [(e["event"], e["status"], e["unfilled_qty"], e["closed"]) for e in events] == [("status", "canceled", 7.0, True)]
    assert tracker.apply(_report("accepted", 3, 50.0, side="sell")) == []
    late = tracker.apply(_report("canceled", 4, 50.0, side="sell"))  # a fill that raced the cancel
    assert [e["event"] for e in late] == ["fill"] and tracker.positions == {"AAPL": -4.0}
    assert tracker.orders["qp-a"]["status"] == "canceled"


def test_unknown_order_is_adopted_and_state_round_trips():
    tracker = OrderTracker()
    events = tracker.apply(_report("filled", 2, 10.0, coid="qp-b", order_id="o-2"), "t1")
    assert events[0]["event"] == "order" and events[0]["adopted"]
    assert tracker.positions == {"AAPL": 2.0}
    restored = OrderTracker()
    restored.load_state(tracker.get_state())
    assert restored.apply(_report("filled", 2, 10.0, coid="qp-b", order_id="o-2")) == []
    assert restored.positions == {"AAPL": 2.0} and math.isclose(restored.cash, -20.0)


def test_local_close_and_bad_status():
    tracker = OrderTracker()
    tracker.track("qp-c", "MSFT", "buy", 1)
    assert tracker.open_symbols() == {"MSFT"}
    assert tracker.close("qp-c", "not_found", "broker has no such client id")[0]["reason"]
    assert tracker.close("qp-c", "failed", "again") == []
    with pytest.raises(ValueError, match="close status"):
        tracker.close("qp-c", "accepted", "x")

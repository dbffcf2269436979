"""The daily Alpaca path end to end against the fake Alpaca server on 127.0.0.1: holdings from the
account, orders that fill later and in parts, fills polled into the ledger, the end-of-day rule,
one order per client_order_id, a re-materialized day sends nothing, a mismatch blocks `orders`."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from dagster import RunConfig, materialize

from quant_assets import portfolio, trading
from quant_resources.broker import BrokerResource
from quant_resources.warehouse import Warehouse
from tests.quant_resources.fake_alpaca import FakeAlpaca

D1, D2, D3 = date(2024, 6, 3), date(2024, 6, 4), date(2024, 6, 5)
CLOSES = {"AAA": 100.0, "BBB": 50.0}


def _seed(path) -> None:
    """Targets of 10 % in AAA and BBB every day at constant closes."""
    rows = [(d, t) for d in (D1, D2, D3) for t in CLOSES]
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "ticker": pl.String}, orient="row")
    wh = Warehouse(path)
    wh.write("prices", frame.with_columns(pl.col("ticker").replace_strict(CLOSES).alias("close"), pl.lit(1e6).alias("volume")))
    wh.write("portfolio_targets", frame.with_columns(pl.lit(0.1).alias("weight")))
    wh.write("rankings", frame.with_columns(pl.lit(1.0).alias("score")))
    wh.write("universe", frame)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "fake-key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "fake-secret")
    with FakeAlpaca(price=100.0) as server:
        server.prices = dict(CLOSES)
        server.hold = True
        monkeypatch.setenv("APCA_API_BASE_URL", server.url)
        yield server


def _run(resources, instance, day: date, *assets):
    """Materialize `assets` for `day`; the book trades the whole gap to target (rebalance_rate 1)."""
    upstream = [a.to_source_asset() for a in _upstream()]
    configured = [a.key.path[-1] for a in assets if a.key.path[-1] in portfolio.CONFIGURED_ASSETS]
    run_config = RunConfig(ops={name: portfolio.PortfolioRunConfig(rebalance_rate=1.0) for name in configured})
    return materialize(upstream + [portfolio.holdings, portfolio.trade_list, trading.orders, trading.fills],
                       resources=resources, instance=instance, selection=[a.key for a in assets],
                       partition_key=day.isoformat(), raise_on_error=False, run_config=run_config)


def _upstream():
    from quant_assets import alpha, market

    return [portfolio.portfolio_targets, market.prices, alpha.rankings, market.universe]


def _session(fake, day: date, is_open: bool) -> None:
    """The broker's clock during `day`'s session (19:00Z, close 20:00Z) or just after its close."""
    fake.clock = {"is_open": is_open, "timestamp": f"{day}T{'19:00:00' if is_open else '20:00:01'}Z",
                  "next_close": f"{day}T20:00:00Z"}


def _holdings(path, day: date) -> dict[str, float]:
    frame = Warehouse(path).read("holdings").filter(pl.col("date") == day)
    return dict(frame.select("ticker", "shares").iter_rows())


@pytest.mark.slow
def test_daily_alpaca_orders_fill_later_and_holdings_follow(sim_resources, instance, warehouse_path, fake):
    _seed(warehouse_path)
    state = warehouse_path.parent / "state"
    resources = {**sim_resources, "broker": BrokerResource(kind="alpaca", state_dir=str(state), fill_wait_s=0.2,
                                                           poll_interval_s=0.05)}
    day_one = (portfolio.holdings, portfolio.trade_list, trading.orders)
    _session(fake, D1, is_open=True)
    assert _run(resources, instance, D1, *day_one).success
    assert _holdings(warehouse_path, D1) == {"CASH": 100_000.0}, "holdings start from the account"
    assert not (state / "paper_broker").exists()
    sent = Warehouse(warehouse_path).read("orders")
    assert sent.select("ticker", "side", "submitted_shares", "status").sort("ticker").rows() == [
        ("AAA", "buy", 100, "accepted"), ("BBB", "buy", 200, "accepted")]
    aaa = sent.filter(pl.col("ticker") == "AAA")["client_order_id"][0]
    fake.fill(aaa, qty=30, price=101.0)
    fake.fill(aaa, qty=10, price=103.0)  # two partial fills before `fills` polls
    result = _run(resources, instance, D1, trading.fills)
    assert result.success
    assert result.asset_materializations_for_node("fills")[0].metadata["open_orders"].value == 2
    fills = Warehouse(warehouse_path).read("fills")
    assert fills.select("ticker", "shares", "price").rows() == [("AAA", 40.0, pytest.approx(101.5))]
    assert len(fake.open_orders()) == 2 and fake.deletes == 0, "the session is not over: orders keep working"
    _session(fake, D1, is_open=False)
    assert _run(resources, instance, D1, trading.fills).success
    assert Warehouse(warehouse_path).read("fills").equals(fills)
    assert {o["client_order_id"]: o["status"] for o in fake.orders}[aaa] == "canceled", "end of day: the rest is canceled"
    assert fake.open_orders() == []

    _session(fake, D2, is_open=True)
    fake.faults = ["504", "429"]  # D2: the first order is accepted then 504, the second refused once
    assert _run(resources, instance, D2, *day_one).success
    assert _holdings(warehouse_path, D2) == {"CASH": pytest.approx(100_000.0 - 40 * 101.5), "AAA": 40.0}
    fake.fill()
    assert _run(resources, instance, D2, trading.fills).success
    posts = fake.posts
    assert _run(resources, instance, D2, *day_one, trading.fills).success, "re-materializing D2"
    assert fake.posts == posts, "a re-materialized day sends nothing"
    assert _holdings(warehouse_path, D2)["AAA"] == 40.0, "holdings before D2 stay those before D2's fills"
    ids = [o["client_order_id"] for o in fake.orders]
    assert len(ids) == len(set(ids)) == 4

    assert _run(resources, instance, D3, portfolio.holdings).success
    held = _holdings(warehouse_path, D3)
    d2 = dict(Warehouse(warehouse_path).read("orders").filter(pl.col("date") == D2).select("ticker", "submitted_shares").iter_rows())
    assert {t: held[t] for t in ("AAA", "BBB")} == {"AAA": 40.0 + d2["AAA"], "BBB": float(d2["BBB"])} == fake.positions
    assert held["CASH"] == pytest.approx(fake.cash)
    ledger = BrokerResource(kind="alpaca", state_dir=str(state)).alpaca_ledger().events()
    ledger_fills = [e for e in ledger if e["event"] == "fill"]
    assert len({e["fill_id"] for e in ledger_fills}) == len(ledger_fills) == 3  # D1: one increment of 40 (two fills between polls)
    assert Warehouse(warehouse_path).read("fills")["shares"].sum() == pytest.approx(held["AAA"] + held["BBB"])

    fake.positions["AAA"] += 5  # a trade outside the platform
    posts = fake.posts
    result = _run(resources, instance, D3, portfolio.trade_list, trading.orders)
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}["broker_reconciles"]
    assert not result.success and not check.passed and f"AAA: broker {held['AAA'] + 5:g}, holdings {held['AAA']:g}" in check.description
    assert fake.posts == posts, "nothing sent"

"""`orders` / `fills` through the paper broker: a re-materialized day sends nothing twice, and a
broker book that disagrees with `holdings` blocks the day's orders."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
from dagster import materialize

from quant_assets import portfolio, trading
from quant_lib.execution.trade_list import build_trade_list
from quant_resources.warehouse import Warehouse

D1, D2 = date(2024, 6, 3), date(2024, 6, 4)
PRICES = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "price": [100.0, 50.0, 20.0]})


def _seed_warehouse(path) -> None:
    """holdings and trade lists of two days: D1 buys AAA and BBB from cash, D2 adds CCC."""
    wh = Warehouse(path)
    cash_after = 100_000.0 - (100 * 100.0 + 200 * 50.0) * (1 + 2e-4) * (1 + 1e-4)
    holdings = pl.DataFrame(
        [(D1, "CASH", 100_000.0, 1.0, 100_000.0), (D2, "CASH", cash_after, 1.0, cash_after),
         (D2, "AAA", 100.0, 100.0, 10_000.0), (D2, "BBB", 200.0, 50.0, 10_000.0)],
        schema={"date": pl.Date, "ticker": pl.String, "shares": pl.Float64, "price": pl.Float64, "value": pl.Float64},
        orient="row",
    )
    empty = pl.DataFrame(schema={"ticker": pl.String, "shares": pl.Int64})
    held = pl.DataFrame({"ticker": ["AAA", "BBB"], "shares": [100, 200]})
    lists = [
        build_trade_list(pl.DataFrame({"ticker": ["AAA", "BBB"], "weight": [0.1, 0.1]}), empty, PRICES, 100_000.0).with_columns(pl.lit(D1).alias("date")),
        build_trade_list(pl.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "weight": [0.1, 0.1, 0.02]}), held, PRICES, 100_000.0).with_columns(pl.lit(D2).alias("date")),
    ]
    wh.write("holdings", holdings)
    wh.write("trade_list", pl.concat(lists))


def _run(resources, instance, day: date):
    return materialize(
        [portfolio.holdings.to_source_asset(), portfolio.trade_list.to_source_asset(), trading.orders, trading.fills],
        resources=resources,
        instance=instance, selection=[trading.orders.key, trading.fills.key], partition_key=day.isoformat(),
        raise_on_error=False,
    )


def test_rematerializing_a_day_sends_no_duplicate_order(sim_resources, instance, warehouse_path):
    _seed_warehouse(warehouse_path)
    state = warehouse_path.parent / "state" / "paper_broker" / f"{D1.isoformat()}.json"
    assert _run(sim_resources, instance, D1).success
    first_state, first_orders = state.read_bytes(), Warehouse(warehouse_path).read("orders")
    assert first_orders.select("ticker", "side", "submitted_shares", "status").sort("ticker").rows() == [
        ("AAA", "buy", 100, "filled"), ("BBB", "buy", 200, "filled")]
    assert _run(sim_resources, instance, D1).success
    assert state.read_bytes() == first_state, "the book after D1 is not applied twice"
    again = Warehouse(warehouse_path).read("orders")
    assert again.equals(first_orders) and again["client_order_id"].n_unique() == 2
    book = json.loads(first_state)
    assert {t: p[0] for t, p in book["positions"].items()} == {"AAA": 100.0, "BBB": 200.0}
    assert sorted(book["orders"]) == sorted(first_orders["client_order_id"].to_list())
    fills = Warehouse(warehouse_path).read("fills")
    assert fills.height == 2 and abs(fills["cash_effect"].sum() - (book["cash"] - 100_000.0)) < 1e-6


def test_reconcile_mismatch_blocks_orders(sim_resources, instance, warehouse_path):
    _seed_warehouse(warehouse_path)
    assert _run(sim_resources, instance, D1).success
    state = warehouse_path.parent / "state" / "paper_broker" / f"{D1.isoformat()}.json"
    good = state.read_text()
    tampered = json.loads(good)
    tampered["positions"]["AAA"][0] = 150.0
    state.write_text(json.dumps(tampered))

    result = _run(sim_resources, instance, D2)
    assert not result.success
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}["broker_reconciles"]
    assert not check.passed and "AAA: broker 150, holdings 100" in check.description
    assert not (state.parent / f"{D2.isoformat()}.json").exists(), "nothing submitted"
    assert Warehouse(warehouse_path).read("orders").filter(pl.col("date") == D2).is_empty()

    state.write_text(good)
    assert _run(sim_resources, instance, D2).success
    placed = Warehouse(warehouse_path).read("orders").filter(pl.col("date") == D2)
    assert placed.select("ticker", "side", "submitted_shares", "status").rows() == [("CCC", "buy", 100, "filled")]


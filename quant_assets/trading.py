"""The daily orders and fills: each day's `trade_list` sent through the `broker` resource.

`orders` walks its range day by day: first the blocking check `broker_reconciles` (the broker's
positions before the day equal that day's `holdings`; a mismatch names the tickers and quantities,
and nothing more is submitted or written), then the trade list, sells first, with deterministic
client order ids (`quant_lib.portfolio.book.order_id_for`). The paper broker saves its book after
each day; a day it already applied returns its recorded orders and sends nothing. `fills` is one
row per fill with its cash effect; `holdings` of the next day starts from them.

On Alpaca (`BROKER=alpaca`, one day per run) `orders` polls the tracked orders, applies the
end-of-day rule to earlier days, reconciles and submits (`BrokerResource.alpaca_orders`); orders
are usually only accepted then. `fills` polls the day's orders until they close or `fill_wait_s`
passes, applies the end-of-day rule, and returns one row per fill increment from the ledger.
"""

from datetime import timedelta

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Failure, Output, asset

from quant_assets.checks import check_specs, validated_output
from quant_assets.partitions import daily_asset, partition_dates
from quant_lib.data.calendar import trading_days
from quant_lib.data.quality import CheckOutcome
from quant_lib.portfolio.construction import CASH_TICKER
from quant_lib.portfolio.book import FILL_COLUMNS, ORDER_COLUMNS, fills_of, reconcile, submit_trades
from quant_resources.broker import BrokerResource

PORTFOLIO = daily_asset("portfolio")


def _paper_day(broker: BrokerResource, executor, day, trades: pl.DataFrame):
    """Orders of one day on the paper book; returns (orders, book after the day)."""
    recorded = broker.recorded_orders(day)
    if recorded:
        skipped = {"status": "skipped", "reason": "day already submitted", "qty": 0.0}
        rows = submit_trades(None, day, trades, submit=lambda t, s, q, p, c: recorded.get(c, skipped))
        return rows, broker.paper_book_before(day + timedelta(days=1), executor.initial_capital)
    rows = submit_trades(executor, day, trades)
    broker.save_day(day, executor, rows["client_order_id"].to_list())
    return rows, executor


def _submit_range(context, trade_list, holdings, broker: BrokerResource):
    first, last = partition_dates(context)
    days = trading_days(first, last)
    if broker.kind == "alpaca" and len(days) > 1:
        raise Failure(f"alpaca broker: orders are sent for one day at a time, got {days[0]} .. {days[-1]}")
    live = broker.kind == "alpaca"
    opening_cash = holdings.filter((pl.col("date") == days[0]) & (pl.col("ticker") == CASH_TICKER))["shares"]
    executor = None if live else broker.paper_book_before(first, float(opening_cash[0]) if opening_cash.len() else 1.0)
    frames, outcome = [], CheckOutcome("broker_reconciles", True, f"broker positions match holdings on {len(days)} days")
    for day in days:
        trades = trade_list.filter(pl.col("date") == day)
        if live:
            rows, mismatches = broker.alpaca_orders(day, trades, holdings.filter(pl.col("date") == day))
        else:
            mismatches = reconcile({s: p.qty for s, p in executor.positions.items()}, holdings.filter(pl.col("date") == day))
        if mismatches:
            outcome = CheckOutcome("broker_reconciles", False, f"{day}: " + "; ".join(mismatches[:20]),
                                   details={"day": str(day), "mismatches": len(mismatches)})
            break
        if live:
            frames.append(rows)
        else:
            rows, executor = _paper_day(broker, executor, day, trades)
            frames.append(rows)
    return (pl.concat(frames) if frames else pl.DataFrame(schema=ORDER_COLUMNS)), outcome


@asset(
    **PORTFOLIO,
    ins={"trade_list": AssetIn("trade_list"), "holdings": AssetIn("holdings")},
    check_specs=check_specs("orders", [("broker_reconciles", "Broker positions equal holdings before any order is sent.", True)]),
    description="Each day's trade list submitted through the broker: client_order_id, broker id, status, fill.",
)
def orders(context: AssetExecutionContext, trade_list: pl.DataFrame, holdings: pl.DataFrame, broker: BrokerResource):
    frame, outcome = _submit_range(context, trade_list, holdings, broker)
    metadata = {"broker": broker.kind, "orders": frame.height,
                "filled": int((frame["status"] == "filled").sum()), "not_filled": int((frame["status"] != "filled").sum())}
    yield from validated_output(frame, [outcome], metadata)


@asset(
    **PORTFOLIO,
    ins={"orders": AssetIn("orders")},
    description="One row per fill: ticker, side, shares, price, commission, cash effect (feeds the next day's holdings).",
)
def fills(context: AssetExecutionContext, orders: pl.DataFrame, broker: BrokerResource):
    frame, still_open = (fills_of(orders), 0) if broker.kind == "paper" else _alpaca_fills(orders, broker)
    if still_open:
        context.log.info(f"{still_open} orders still working: their later fills come with the next poll")
    return Output(frame, metadata={"fills": frame.height, "cash_effect": float(frame["cash_effect"].sum()),
                                   "open_orders": still_open})


def _alpaca_fills(orders: pl.DataFrame, broker: BrokerResource) -> tuple[pl.DataFrame, int]:
    """One row per fill increment of each day's Alpaca orders (from the ledger), and how many of
    those orders are still working."""
    frames, still_open = [], 0
    for (day,), day_orders in orders.partition_by("date", as_dict=True).items():
        events, working = broker.alpaca_fill_events(day, day_orders["client_order_id"].to_list())
        still_open += working
        frames.append(pl.DataFrame(
            [(day, e["client_order_id"], e["symbol"], e["side"], e["qty"], e["price"], e["commission"],
              (-1.0 if e["side"] == "buy" else 1.0) * e["qty"] * e["price"] - e["commission"]) for e in events],
            schema=FILL_COLUMNS, orient="row"))
    return (pl.concat(frames) if frames else pl.DataFrame(schema=FILL_COLUMNS)), still_open

"""The daily book: holdings carried forward by the fills of each day's trade list (no I/O).

holdings(D) = holdings(D-1) + fills(D-1), cash included: the book is a `PaperExecutor`
(`quant_lib.execution.paper`), each day's trade list (`build_trade_lists`, from the day's
holdings to its targets) is submitted to it at the close, sells first, with the deterministic
client order id `client_order_id("trade_list:<day>", ticker, side)`. A buy larger than the
buying power left (slippage and commission) is cut to the whole shares that fit, so the book
always holds whole shares and the next day's trade list trades only the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import polars as pl

from quant_lib.execution.ledger import client_order_id
from quant_lib.execution.paper import PaperExecutor
from quant_lib.portfolio.construction import CASH_TICKER, HOLDINGS_COLUMNS, PortfolioConfig, build_trade_lists

ORDER_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(), "client_order_id": pl.String(), "broker_order_id": pl.String(), "ticker": pl.String(),
    "side": pl.String(), "requested_shares": pl.Int64(), "submitted_shares": pl.Int64(), "status": pl.String(),
    "filled_shares": pl.Float64(), "fill_price": pl.Float64(), "commission": pl.Float64(), "reason": pl.String(),
}
FILL_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(), "client_order_id": pl.String(), "ticker": pl.String(), "side": pl.String(),
    "shares": pl.Float64(), "price": pl.Float64(), "commission": pl.Float64(), "cash_effect": pl.Float64(),
}
"""cash_effect = -shares x price - commission for a buy, shares x price - commission for a sell."""


def order_id_for(day: date, ticker: str, side: str) -> str:
    return client_order_id(f"trade_list:{day.isoformat()}", ticker, side.lower())


def book_holdings(executor: PaperExecutor, day: date, closes: dict[str, float]) -> pl.DataFrame:
    """`HOLDINGS_COLUMNS` rows of the book on `day`: one per position (valued at the close), plus CASH."""
    rows = [(day, CASH_TICKER, float(executor.cash), 1.0, float(executor.cash))]
    for ticker, position in sorted(executor.positions.items()):
        price = closes.get(ticker, position.current_price)
        rows.append((day, ticker, float(position.qty), float(price), float(position.qty * price)))
    return pl.DataFrame(rows, schema=HOLDINGS_COLUMNS, orient="row")


def submit_trades(executor: PaperExecutor | None, day: date, trades: pl.DataFrame, submit=None) -> pl.DataFrame:
    """Submit one day's trade list (sells first) to `executor` (or through `submit(ticker, side,
    qty, price, client_order_id)`, a broker's order call; buys are then not cut to the paper
    buying power when `executor` is None); returns `ORDER_COLUMNS` rows."""
    submit = submit or (lambda t, s, q, p, c: executor.submit_order(t, s, q, p, client_order_id=c, timestamp=day.isoformat()))
    rows = []
    for trade in trades.sort("side", descending=True).iter_rows(named=True):
        side = trade["side"].lower()
        wanted = int(trade["shares"])
        qty = wanted if side == "sell" or executor is None else min(wanted, _affordable(executor, trade["price"]))
        coid = order_id_for(day, trade["ticker"], side)
        if qty <= 0:
            rows.append((day, coid, None, trade["ticker"], side, wanted, 0, "rejected", 0.0, None, 0.0, "insufficient buying power"))
            continue
        record = submit(trade["ticker"], side, float(qty), float(trade["price"]), coid)
        rows.append((day, coid, record.get("order_id"), trade["ticker"], side, wanted, qty, record.get("status"),
                     float(record.get("qty") or 0.0), record.get("price"), float(record.get("commission") or 0.0),
                     record.get("reason")))
    return pl.DataFrame(rows, schema=ORDER_COLUMNS, orient="row")


def _affordable(executor: PaperExecutor, price: float) -> int:
    cost = price * (1.0 + executor.slippage) * (1.0 + executor.commission_rate)
    return int(math.floor(max(executor.buying_power(), 0.0) / cost + 1e-9))


def fills_of(orders: pl.DataFrame) -> pl.DataFrame:
    """`FILL_COLUMNS` rows of the filled orders."""
    sign = pl.when(pl.col("side") == "buy").then(-1.0).otherwise(1.0)
    return orders.filter((pl.col("status") == "filled") & (pl.col("filled_shares") > 0)).select(
        "date", "client_order_id", "ticker", "side", pl.col("filled_shares").alias("shares"),
        pl.col("fill_price").alias("price"), "commission",
        (sign * pl.col("filled_shares") * pl.col("fill_price") - pl.col("commission")).alias("cash_effect"),
    ).cast(FILL_COLUMNS)


def project_book(
    executor: PaperExecutor,
    days: Sequence[date],
    targets: pl.DataFrame,
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    universe: pl.DataFrame,
    config: PortfolioConfig = PortfolioConfig(),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(holdings, orders) over `days` in order: each day's holdings are the book before its
    trades; the trade list is submitted to `executor` (which ends holding the book after the
    last day). A sequential walk: every day starts from the previous day's fills."""
    wanted = pl.col("date").is_in(list(days))
    by_day = {name: _by_date(frame.filter(wanted)) for name, frame in
              (("targets", targets), ("prices", prices), ("rankings", rankings), ("universe", universe))}
    held, orders = [], []
    for day in days:
        day_prices = by_day["prices"].get(day, prices.clear())
        day_closes = dict(day_prices.select("ticker", "close").iter_rows())
        executor.update_market_prices(day_closes)
        book = book_holdings(executor, day, day_closes)
        held.append(book)
        day_targets = by_day["targets"].get(day)
        if day_targets is None or not day_closes:
            continue
        trades = build_trade_lists(day_targets, book, day_prices, by_day["rankings"].get(day, rankings.clear()),
                                   by_day["universe"].get(day, universe.clear()), config)
        orders.append(submit_trades(executor, day, trades))
    holdings = pl.concat(held) if held else pl.DataFrame(schema=HOLDINGS_COLUMNS)
    return holdings, (pl.concat(orders) if orders else pl.DataFrame(schema=ORDER_COLUMNS))


def _by_date(frame: pl.DataFrame) -> dict[date, pl.DataFrame]:
    return {key[0]: part for key, part in frame.partition_by("date", as_dict=True).items()}


def reconcile(broker_positions: dict[str, float], holdings: pl.DataFrame, tolerance: float = 1e-6) -> list[str]:
    """Tickers whose broker quantity differs from the non-cash `holdings` shares, as
    "TICKER: broker X, holdings Y" (empty: reconciled)."""
    book = dict(holdings.filter(pl.col("ticker") != CASH_TICKER).select("ticker", "shares").iter_rows())
    tickers = sorted(set(book) | {t for t, q in broker_positions.items() if abs(q) > tolerance})
    return [f"{t}: broker {broker_positions.get(t, 0.0):g}, holdings {book.get(t, 0.0):g}" for t in tickers
            if abs(broker_positions.get(t, 0.0) - book.get(t, 0.0)) > tolerance]


def traded_turnover(trade_lists: pl.DataFrame, values: pl.DataFrame, window: int = 21) -> pl.DataFrame:
    """date, turnover_21d: the sum over the last `window` dates of the book's one-way traded
    turnover 0.5 x sum |trade value| / portfolio value (dates of `values`; no trades: 0)."""
    traded = trade_lists.group_by("date").agg(pl.col("value").sum().alias("_traded"))
    return (
        values.select("date", "portfolio_value").sort("date")
        .join(traded, on="date", how="left")
        .select("date", (0.5 * pl.col("_traded").fill_null(0.0) / pl.col("portfolio_value"))
                .rolling_sum(window_size=window, min_samples=1).alias("turnover_21d"))
    )

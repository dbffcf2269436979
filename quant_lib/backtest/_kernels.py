"""Compiled time recursion of the vectorized backtest (numba).

Holdings drift with prices between rebalances, so each day depends on the previous one: the
recursion over days is inherently sequential. It is compiled with numba (the tool vectorbt uses
for the same job) so that the per-day work runs as machine code, and it only touches the active
tickers of each day (held, or in the day's target row), not the whole universe.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _trade_cost(trade_value: float, fixed_rate: float, impact_scale: float) -> float:
    """cost = |v| * fixed_rate + impact_scale * |v| ** 1.5  (square-root impact on |v|)."""
    value = abs(trade_value)
    cost = value * fixed_rate
    if impact_scale > 0.0:
        cost += impact_scale * value * np.sqrt(value)
    return cost


@njit(cache=True, nogil=True)
def simulate_target_weights(
    valuation_price: np.ndarray,
    tradable: np.ndarray,
    check_tradable: bool,
    target_indptr: np.ndarray,
    target_index: np.ndarray,
    target_weight: np.ndarray,
    target_row: np.ndarray,
    rebalance: np.ndarray,
    fixed_rate: float,
    impact_scale: np.ndarray,
    use_impact: bool,
    initial_cash: float,
    min_trade_fraction: float,
    fill_day: np.ndarray,
    fill_ticker: np.ndarray,
    fill_value: np.ndarray,
    fill_cost: np.ndarray,
    hold_day: np.ndarray,
    hold_ticker: np.ndarray,
    hold_weight: np.ndarray,
    daily_out: np.ndarray,
) -> tuple[int, int]:
    """Rebalance to target weights at each rebalance day's close; holdings drift in between.

    Targets are sparse rows (CSR: ``target_indptr``, ``target_index``, ``target_weight``); day
    ``t`` uses row ``target_row[t]`` when ``rebalance[t]``; tickers absent from the row target 0.

    Per day ``t`` (prices ``p``, shares ``q``, cash ``c``): ``V = c + sum(q * p)``; on a rebalance
    day each tradable ticker gets the order ``dq = w * V / p - q`` (the target is sized on the
    pre-trade value, as vectorbt's ``targetpercent`` with ``update_value=False``). Sells execute
    first (cash += |v| - cost), then buys in ascending order of value (ties: ticker order); when the
    cash runs out the remaining largest buys are dropped and the last one reached is cut to
    ``cash / (1 + cost_rate)`` (vectorbt's ``call_seq="auto"`` with ``allow_partial=True``).
    Untradable tickers keep their shares; orders worth at most ``min_trade_fraction * V``
    (floating-point residue of an unchanged holding) are skipped.

    Outputs are sparse records: fills ``(fill_day, fill_ticker, fill_value, fill_cost)`` and
    post-trade holdings ``(hold_day, hold_ticker, hold_weight)`` (capacity ``n_days * n_tickers``),
    and ``daily_out[t]`` columns 0 equity, 1 cash, 2 traded value (sum |v|), 3 costs,
    4 gross exposure, 5 net exposure, 6 pre-trade value. Returns (number of fills, number of holdings).
    """
    n_days, n_tickers = valuation_price.shape
    shares = np.zeros(n_tickers)
    held = np.empty(n_tickers, dtype=np.int64)
    n_held = 0
    candidates = np.empty(n_tickers, dtype=np.int64)
    stamp = np.full(n_tickers, -1, dtype=np.int64)
    weight_now = np.zeros(n_tickers)
    buy_index = np.empty(n_tickers, dtype=np.int64)
    buy_key = np.empty(n_tickers)
    buy_shares = np.empty(n_tickers)
    buy_value = np.empty(n_tickers)
    buy_cost = np.empty(n_tickers)
    buy_fill = np.empty(n_tickers, dtype=np.bool_)
    cash = initial_cash
    n_fills = 0
    n_holds = 0
    for t in range(n_days):
        value = cash
        for k in range(n_held):
            i = held[k]
            value += shares[i] * valuation_price[t, i]
        traded = 0.0
        costs = 0.0
        if rebalance[t] and value > 0.0:
            row = target_row[t]
            n_candidates = 0
            for k in range(n_held):
                i = held[k]
                stamp[i] = t
                candidates[n_candidates] = i
                n_candidates += 1
            for j in range(target_indptr[row], target_indptr[row + 1]):
                i = target_index[j]
                weight_now[i] = target_weight[j]
                if stamp[i] != t:
                    stamp[i] = t
                    candidates[n_candidates] = i
                    n_candidates += 1
            buy_needed = 0.0
            n_buys = 0
            for c in range(n_candidates):
                i = candidates[c]
                if check_tradable and not tradable[t, i]:
                    continue
                price = valuation_price[t, i]
                delta = weight_now[i] * value / price - shares[i]
                trade_value = delta * price
                if abs(trade_value) <= min_trade_fraction * value:
                    continue
                scale = impact_scale[t, i] if use_impact else 0.0
                cost = _trade_cost(trade_value, fixed_rate, scale)
                if trade_value < 0.0:
                    cash += -trade_value - cost
                    shares[i] += delta
                    fill_day[n_fills] = t
                    fill_ticker[n_fills] = i
                    fill_value[n_fills] = trade_value
                    fill_cost[n_fills] = cost
                    n_fills += 1
                    traded -= trade_value
                    costs += cost
                else:
                    buy_index[n_buys] = i
                    buy_key[n_buys] = weight_now[i] * value - shares[i] * price
                    buy_shares[n_buys] = delta
                    buy_value[n_buys] = trade_value
                    buy_cost[n_buys] = cost
                    buy_fill[n_buys] = True
                    buy_needed += trade_value + cost
                    n_buys += 1
            for j in range(target_indptr[row], target_indptr[row + 1]):
                weight_now[target_index[j]] = 0.0
            partial = -1
            while buy_needed > cash and n_buys > 0:
                largest = -1
                for k in range(n_buys):
                    if buy_fill[k] and (
                        largest < 0
                        or buy_key[k] > buy_key[largest]
                        or (buy_key[k] == buy_key[largest] and buy_index[k] > buy_index[largest])
                    ):
                        largest = k
                if largest < 0:
                    break
                buy_fill[largest] = False
                buy_needed -= buy_value[largest] + buy_cost[largest]
                partial = largest
            for k in range(n_buys):
                if buy_fill[k]:
                    i = buy_index[k]
                    cash -= buy_value[k] + buy_cost[k]
                    shares[i] += buy_shares[k]
                    fill_day[n_fills] = t
                    fill_ticker[n_fills] = i
                    fill_value[n_fills] = buy_value[k]
                    fill_cost[n_fills] = buy_cost[k]
                    n_fills += 1
                    traded += buy_value[k]
                    costs += buy_cost[k]
            if partial >= 0 and cash > 0.0:
                i = buy_index[partial]
                cost_rate = buy_cost[partial] / buy_value[partial]
                filled = cash / (1.0 + cost_rate)
                shares[i] += filled / valuation_price[t, i]
                fill_day[n_fills] = t
                fill_ticker[n_fills] = i
                fill_value[n_fills] = filled
                fill_cost[n_fills] = cash - filled
                n_fills += 1
                traded += filled
                costs += cash - filled
                cash = 0.0
            n_held = 0
            for c in range(n_candidates):
                i = candidates[c]
                if shares[i] != 0.0:
                    held[n_held] = i
                    n_held += 1
        equity = cash
        for k in range(n_held):
            i = held[k]
            equity += shares[i] * valuation_price[t, i]
        gross = 0.0
        net = 0.0
        if equity != 0.0:
            for k in range(n_held):
                i = held[k]
                weight = shares[i] * valuation_price[t, i] / equity
                hold_day[n_holds] = t
                hold_ticker[n_holds] = i
                hold_weight[n_holds] = weight
                n_holds += 1
                gross += abs(weight)
                net += weight
        daily_out[t, 0] = equity
        daily_out[t, 1] = cash
        daily_out[t, 2] = traded
        daily_out[t, 3] = costs
        daily_out[t, 4] = gross
        daily_out[t, 5] = net
        daily_out[t, 6] = value
    return n_fills, n_holds

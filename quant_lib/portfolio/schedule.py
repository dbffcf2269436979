"""Rebalance schedule: the trading days on which the book trades toward its targets.

Between rebalance days the book drifts with prices and nothing is traded; a calendar schedule
(first session of each week or month) is the classic periodic-rebalancing rule (e.g. Grinold and
Kahn, Active Portfolio Management, ch. 16), and it depends only on the date, so a one-day run and a
ranged backfill agree.
"""

from __future__ import annotations

import polars as pl

from quant_lib.data.calendar import previous_trading_day

REBALANCE_FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly")
_PERIOD = {"weekly": "1w", "monthly": "1mo"}


def rebalance_day_flags(dates: pl.Series, frequency: str) -> pl.Series:
    """True where the date is a rebalance day: every session ("daily"), or the first session of its
    ISO week ("weekly") or calendar month ("monthly"), i.e. the previous session (exchange
    calendar) lies in an earlier week / month."""
    if frequency not in REBALANCE_FREQUENCIES:
        raise ValueError(f"rebalance_frequency must be one of {REBALANCE_FREQUENCIES}, got {frequency!r}")
    days = dates.cast(pl.Date)
    if frequency == "daily" or days.is_empty():
        return pl.Series(dates.name, [True] * days.len(), dtype=pl.Boolean)
    previous = previous_trading_day(days)
    period = _PERIOD[frequency]
    return (days.dt.truncate(period) != previous.cast(pl.Date).dt.truncate(period)).alias(dates.name)

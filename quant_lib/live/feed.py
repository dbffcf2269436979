"""Bar feeds for the live loop: the ``BarFeed`` protocol, polling of a real source, and the replay.

A feed yields bar groups ``{symbol: bar}`` (one per bar start time, oldest first), each closed,
never one the loop has already processed (``resume_after``), never twice. ``PollingBarFeed``
asks a ``BarSource`` (``quant_resources.feeds``: Alpaca, yfinance, ccxt) for the bars since the
last one emitted, then sleeps until the next bar of the session grid closes, all through an
injected ``Clock``. The assembly rules (``closed_bars``, ``count_gaps``) are pure:

- duplicate (symbol, timestamp) rows: the first is kept, the rest counted (``duplicates``);
- a bar starting outside every session of the calendar (Alpaca's pre- and after-market stock
  bars on XNYS) is dropped and counted (``outside``): the loop trades regular sessions only;
- a bar is closed at min(start + interval, session close); a bar still forming is dropped and
  counted (``partial``): the next poll fetches it again once closed;
- bars at or before the last one emitted are dropped (``late`` when they arrive after it); a group
  lacking some symbols (no trade in that bar, or a bar the provider publishes late) is emitted
  without them and the absent symbol-bars are counted (``absent``);
- a group whose start is more than one grid step after the previous group is a gap: the missing
  bar starts of the calendar's grid (``quant_lib.data.intraday.bar_grid``: sessions only, so a
  night or a weekend is not a gap) are counted and logged, never invented.

Errors: ``FeedError`` (permanent: unknown symbol, interval not offered, history limit) stops the
loop at once; ``FeedUnavailable`` (the provider cannot be reached) is retried ``max_retries`` times
with exponential backoff ``backoff * 2**attempt`` seconds, then raised. Outside a session the feed
sleeps until the next session's first bar closes and logs that once per closure.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from quant_lib.data.calendar import ALWAYS_OPEN, session_table
from quant_lib.data.intraday import bar_grid, interval_minutes
from quant_lib.live.bars import bar_groups

logger = logging.getLogger(__name__)

BarGroup = dict[str, dict[str, Any]]
FEED_COLUMNS = {"timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String, "open": pl.Float64, "high": pl.Float64,
                "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64}
"""Long bar frame a ``BarSource`` returns: bar start (UTC), symbol, float OHLCV."""


class FeedError(RuntimeError):
    """The feed cannot go on (unknown symbol, interval not offered, history limit, bad keys)."""


class FeedUnavailable(FeedError):
    """The provider cannot be reached now (network error, timeout, HTTP 429/5xx): worth retrying."""


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class BarSource(Protocol):
    """Bars of several symbols starting in [start, end) as ``FEED_COLUMNS`` (the bar still forming
    may be among them). Raises ``FeedUnavailable`` for transient failures, ``FeedError`` otherwise."""

    name: str

    def fetch_bars(self, symbols: Sequence[str], interval: str, start: datetime, end: datetime) -> pl.DataFrame: ...


@runtime_checkable
class BarFeed(Protocol):
    """What ``quant live`` reads bars from: replay or a real provider."""

    name: str

    def resume_after(self, timestamp: datetime | None) -> None:
        """Emit only bars that start after ``timestamp`` (the state's last bar)."""

    def history(self, n_bars: int) -> list[BarGroup]:
        """Up to ``n_bars`` closed groups before now, to warm the loop's buffers (no trading)."""

    def __iter__(self) -> Iterator[BarGroup]: ...


@dataclass
class FeedStats:
    """Counts of everything the assembly dropped or found missing (never silent)."""

    bars: int = 0
    groups: int = 0
    duplicates: int = 0
    outside: int = 0
    partial: int = 0
    absent: int = 0
    late: int = 0
    gaps: int = 0
    missing_bars: int = 0
    polls: int = 0
    retries: int = 0
    gap_log: list[tuple[str, str, int]] = field(default_factory=list)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _ns(moment: datetime) -> np.datetime64:
    return np.datetime64(_utc(moment).replace(tzinfo=None), "ns")


def _from_ns(value: np.datetime64) -> datetime:
    return datetime.fromtimestamp(int(value.astype("datetime64[us]").astype(np.int64)) / 1e6, timezone.utc)


def session_close_of(stamps: np.ndarray, calendar: str) -> np.ndarray:
    """Close (UTC datetime64[ns]) of the session holding each bar start; NaT outside any session."""
    _, opens, closes = session_table(calendar)
    idx = np.searchsorted(opens, stamps, side="right") - 1
    safe = np.clip(idx, 0, len(closes) - 1)
    inside = (idx >= 0) & (stamps < closes[safe])
    return np.where(inside, closes[safe], np.datetime64("NaT", "ns"))


def next_bar_close(now: datetime, length: timedelta, calendar: str) -> tuple[datetime, bool]:
    """(close of the next bar on the session grid after ``now``, whether the market is closed now)."""
    _, opens, closes = session_table(calendar)
    t = _ns(now)
    step = np.timedelta64(int(length.total_seconds() * 1e9), "ns")
    idx = int(np.searchsorted(opens, t, side="right")) - 1
    if idx >= 0 and t < closes[idx]:
        k = (t - opens[idx]) // step + 1
        return _from_ns(min(opens[idx] + k * step, closes[idx])), False
    nxt = idx + 1
    if nxt >= len(opens):
        raise FeedError(f"no {calendar} session after {now.isoformat()} in the calendar table")
    return _from_ns(min(opens[nxt] + step, closes[nxt])), True


def closed_bars(frame: pl.DataFrame, length: timedelta, now: datetime, after: datetime | None,
                calendar: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Closed in-session bars after ``after``, deduplicated, sorted by (timestamp, symbol), with
    the counts of duplicates, bars outside any session, bars still forming (partial) and bars at
    or before ``after`` (late)."""
    frame = frame.select(list(FEED_COLUMNS)).cast(FEED_COLUMNS)
    unique = frame.unique(["symbol", "timestamp"], keep="first", maintain_order=True)
    counts = {"duplicates": frame.height - unique.height}
    stamps = unique["timestamp"].dt.replace_time_zone(None).cast(pl.Datetime("ns")).to_numpy()
    close = session_close_of(stamps, calendar)
    inside = ~np.isnat(close)
    counts["outside"] = int((~inside).sum())
    bar_end = np.minimum(stamps + np.timedelta64(int(length.total_seconds() * 1e9), "ns"), np.where(inside, close, stamps))
    is_closed = inside & (bar_end <= _ns(now))
    counts["partial"] = int((inside & ~is_closed).sum())
    fresh = np.ones(len(stamps), dtype=bool) if after is None else stamps > _ns(after)
    counts["late"] = int((is_closed & ~fresh).sum())
    kept = unique.filter(pl.Series(is_closed & fresh))
    return kept.sort("timestamp", "symbol", maintain_order=True), counts


def count_gaps(previous: datetime, stamps: Sequence[datetime], interval: str, calendar: str) -> list[tuple[datetime, datetime, int]]:
    """(after, before, missing bars) for each hole in ``previous, *stamps`` on the calendar's grid."""
    if not stamps:
        return []
    points = np.array([_ns(previous), *(_ns(s) for s in stamps)])
    table_days = session_table(calendar)[0]
    first, last = points[0].astype("datetime64[D]"), points[-1].astype("datetime64[D]")
    days = table_days[(table_days >= first) & (table_days <= last)]
    grid = bar_grid(days, interval, calendar)[1] if len(days) else np.array([], dtype="datetime64[ns]")
    missing = np.searchsorted(grid, points[1:], side="left") - np.searchsorted(grid, points[:-1], side="right")
    return [(_from_ns(points[i]), _from_ns(points[i + 1]), int(missing[i])) for i in np.flatnonzero(missing > 0)]


class PollingBarFeed:
    """Polls ``source`` for closed bars of ``symbols`` (see the module doc); iterate it forever."""

    def __init__(self, source: BarSource, symbols: Sequence[str], interval: str, clock: Clock, *,
                 calendar: str = ALWAYS_OPEN, poll_delay: float = 2.0, max_retries: int = 5, backoff: float = 1.0,
                 max_catchup: timedelta | None = None):
        self.source, self.symbols, self.interval, self.clock = source, list(symbols), interval, clock
        self.name = source.name
        self.length = timedelta(minutes=interval_minutes(interval))
        self.calendar, self.poll_delay = calendar, poll_delay
        self.max_retries, self.backoff, self.max_catchup = max_retries, backoff, max_catchup
        self.after: datetime | None = None
        self.stats = FeedStats()
        self._closed_logged = False

    def resume_after(self, timestamp: datetime | None) -> None:
        """Emit bars after ``timestamp``; ``FeedError`` when it is more than ``max_catchup`` ago
        (a restart would trade every bar since, e.g. a state left by the replay)."""
        self.after = _utc(timestamp) if timestamp is not None else None
        if self.after is not None and self.max_catchup is not None:
            age = _utc(self.clock.now()) - self.after
            if age > self.max_catchup:
                raise FeedError(f"{self.name}: the saved state's last bar is {self.after.isoformat()}, {age.days} days "
                                f"ago: resuming would trade every bar since (limit {self.max_catchup.days} days); "
                                "start fresh (move the state file away) or raise the limit")

    def fetch(self, start: datetime, end: datetime) -> pl.DataFrame:
        """``source.fetch_bars`` with retries on ``FeedUnavailable`` (exponential backoff)."""
        for attempt in range(self.max_retries + 1):
            try:
                self.stats.polls += 1
                return self.source.fetch_bars(self.symbols, self.interval, start, end)
            except FeedUnavailable as error:
                if attempt == self.max_retries:
                    raise FeedUnavailable(f"{self.name}: unreachable after {attempt + 1} attempts: {error}") from error
                delay = self.backoff * 2**attempt
                self.stats.retries += 1
                logger.warning("%s: %s; retry %d/%d in %.0f s", self.name, error, attempt + 1, self.max_retries, delay)
                self.clock.sleep(delay)
        raise AssertionError("unreachable")

    def history(self, n_bars: int) -> list[BarGroup]:
        """The last ``n_bars`` closed groups; ``FeedError`` naming any symbol with no bar at all."""
        now = _utc(self.clock.now())
        frame = self.fetch(self._lookback_start(now, max(n_bars, 1)), now)
        missing = sorted(set(self.symbols) - set(frame["symbol"].unique().to_list()))
        if missing:
            raise FeedError(f"{self.name}: no {self.interval} bars for {', '.join(missing)} in the last sessions "
                            f"(unknown symbol, or not traded there; crypto is BTC/USD on Alpaca and ccxt, BTC-USD on Yahoo)")
        return self._emit(self._assemble(frame, now)[-n_bars:] if n_bars > 0 else [])

    def poll(self) -> list[BarGroup]:
        """Closed groups since the last one emitted (all of them after a restart: none skipped);
        with nothing emitted yet, the newest closed group only (history is ``history``'s job)."""
        now = _utc(self.clock.now())
        start = self.after + self.length if self.after is not None else self._lookback_start(now, 1)
        if start >= now:
            return []
        groups = self._assemble(self.fetch(start, now), now)
        if self.after is None:
            groups = groups[-1:]
        if groups:
            self._closed_logged = False
        return self._emit(groups)

    def wait(self) -> None:
        """Sleep until the next bar of the session grid has closed, plus ``poll_delay``."""
        now = _utc(self.clock.now())
        close, market_closed = next_bar_close(now, self.length, self.calendar)
        if market_closed and not self._closed_logged:
            logger.info("%s: market closed (%s); waiting for the bar closing at %s", self.name, self.calendar,
                        close.isoformat())
            self._closed_logged = True
        self.clock.sleep((close - now).total_seconds() + self.poll_delay)

    def __iter__(self) -> Iterator[BarGroup]:
        while True:
            yield from self.poll()
            self.wait()

    def _lookback_start(self, now: datetime, n_bars: int) -> datetime:
        """Open of the session far enough back to hold ``n_bars`` bars (plus one spare session)."""
        days, opens, closes = session_table(self.calendar)
        idx = int(np.searchsorted(opens, _ns(now), side="right")) - 1
        per_session = max(float(np.median((closes - opens)[max(idx - 20, 0): idx + 1]) / np.timedelta64(1, "s"))
                          / self.length.total_seconds(), 1.0)
        back = int(math.ceil(n_bars / per_session)) + 1
        return _from_ns(opens[max(idx - back, 0)])

    def _assemble(self, frame: pl.DataFrame, now: datetime) -> list[BarGroup]:
        bars, counts = closed_bars(frame, self.length, now, self.after, self.calendar)
        for key, value in counts.items():
            setattr(self.stats, key, getattr(self.stats, key) + value)
        if counts["partial"]:
            logger.debug("%s: %d bar(s) still forming, fetched again next poll", self.name, counts["partial"])
        groups = bar_groups(bars)
        stamps = [_group_time(g) for g in groups]
        if self.after is not None:
            for before, after, missing in count_gaps(self.after, stamps, self.interval, self.calendar):
                self.stats.gaps += 1
                self.stats.missing_bars += missing
                self.stats.gap_log.append((before.isoformat(), after.isoformat(), missing))
                logger.warning("%s: gap of %d %s bar(s) between %s and %s (the provider sent none)", self.name,
                               missing, self.interval, before.isoformat(), after.isoformat())
        return groups

    def _emit(self, groups: list[BarGroup]) -> list[BarGroup]:
        """Count what is handed to the loop (bars, groups, symbol-bars absent from a group)."""
        bars = sum(len(g) for g in groups)
        self.stats.bars += bars
        self.stats.groups += len(groups)
        self.stats.absent += len(self.symbols) * len(groups) - bars
        if groups:
            self.after = _group_time(groups[-1])
        return groups


def _group_time(group: BarGroup) -> datetime:
    return _utc(max(bar["timestamp"] for bar in group.values()))


class ReplayFeed:
    """The seeded simulated tape as a feed: every group after ``resume_after`` in order, pausing
    ``interval / speed`` between bars on ``clock`` (``speed`` 0: as fast as possible)."""

    name = "simulated"

    def __init__(self, bars: pl.DataFrame, interval: timedelta, speed: float = 0.0, clock: Clock | None = None):
        if speed > 0 and clock is None:
            raise ValueError("a replay with speed > 0 needs a clock to sleep on")
        self.bars, self.clock = bars, clock
        self.pause = interval.total_seconds() / speed if speed > 0 else 0.0
        self.after: datetime | None = None

    def resume_after(self, timestamp: datetime | None) -> None:
        self.after = _utc(timestamp) if timestamp is not None else None

    def history(self, n_bars: int) -> list[BarGroup]:
        """None: the replay warms up by processing the tape from its start."""
        return []

    def __iter__(self) -> Iterator[BarGroup]:
        bars = self.bars if self.after is None else self.bars.filter(pl.col("timestamp") > self.after)
        for group in bar_groups(bars):
            yield group
            if self.pause and self.clock is not None:
                self.clock.sleep(self.pause)

"""Bar feeds for the live loop: assembly rules, waiting on a fake clock, retries, restart, replay.

No network and no real sleeping: the source is a tape in memory that serves only bars that have
started by the fake clock's now (the newest one still forming), and the clock's sleep advances it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quant_lib.live import LiveConfig
from quant_lib.live.feed import (
    FeedError,
    FeedUnavailable,
    PollingBarFeed,
    ReplayFeed,
    closed_bars,
    count_gaps,
    next_bar_close,
)
from tests.quant_lib.live_helpers import make_trainer, tiny_models

UTC = timezone.utc
FIVE = timedelta(minutes=5)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now_value, self.sleeps = now, []

    def now(self) -> datetime:
        return self.now_value

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_value += timedelta(seconds=seconds)


def tape(symbols=("AAA", "BBB"), start=datetime(2025, 3, 3, 0, 0, tzinfo=UTC), n=600, drop=()) -> pl.DataFrame:
    rows = [
        {"timestamp": start + i * FIVE, "symbol": s, "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i,
         "close": 100.5 + i, "volume": 10.0}
        for i in range(n) for s in symbols if (i, s) not in drop and i not in drop
    ]
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


class TapeSource:
    """Serves the bars of a tape that have started by ``clock.now()``; scripted failures first."""

    name = "tape"

    def __init__(self, bars: pl.DataFrame, clock: FakeClock, failures=(), duplicate=False) -> None:
        self.bars, self.clock, self.failures, self.duplicate = bars, clock, list(failures), duplicate
        self.calls: list[tuple[datetime, datetime]] = []

    def fetch_bars(self, symbols, interval, start, end):
        self.calls.append((start, end))
        if self.failures:
            raise self.failures.pop(0)
        stamp = pl.col("timestamp")
        out = self.bars.filter(stamp.is_between(start, min(end, self.clock.now()), closed="left")
                               & pl.col("symbol").is_in(list(symbols)))
        return pl.concat([out, out.head(2)]) if self.duplicate else out


def _stamps(groups):
    return [max(b["timestamp"] for b in g.values()) for g in groups]


def test_closed_bars_dedupes_drops_forming_and_late_bars_with_counts():
    bars = tape(n=4)
    saturday = tape(n=1, start=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    frame = pl.concat([bars, bars.head(3), saturday])
    now = datetime(2025, 3, 3, 0, 17, tzinfo=UTC)  # bars 00:00, 00:05, 00:10 closed; 00:15 forming
    kept, counts = closed_bars(frame, FIVE, now, datetime(2025, 3, 3, 0, 0, tzinfo=UTC), "24/5")
    assert counts == {"duplicates": 3, "outside": 2, "partial": 2, "late": 2}
    assert kept["timestamp"].dt.minute().to_list() == [5, 5, 10, 10]
    assert kept["symbol"].to_list() == ["AAA", "BBB", "AAA", "BBB"]


def test_gaps_follow_the_session_grid_not_the_clock():
    t = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    # 24/5: Friday's last bar to Monday's first is no gap; a missing Monday bar is one.
    assert count_gaps(t(2025, 3, 7, 23, 55), [t(2025, 3, 10, 0, 0)], "5m", "24/5") == []
    assert count_gaps(t(2025, 3, 10, 0, 0), [t(2025, 3, 10, 0, 5), t(2025, 3, 10, 0, 20)], "5m", "24/5") == [
        (t(2025, 3, 10, 0, 5), t(2025, 3, 10, 0, 20), 2)]
    close, closed = next_bar_close(t(2025, 3, 8, 12, 0), FIVE, "24/5")  # Saturday
    assert (close, closed) == (t(2025, 3, 10, 0, 5), True)
    assert next_bar_close(t(2025, 3, 10, 0, 7), FIVE, "24/5") == (t(2025, 3, 10, 0, 10), False)


def test_history_warms_on_closed_bars_then_each_bar_is_emitted_once_after_it_closes():
    clock = FakeClock(datetime(2025, 3, 3, 2, 2, tzinfo=UTC))  # 24 bars closed, the 02:00 bar forming
    source = TapeSource(tape(), clock, duplicate=True)
    feed = PollingBarFeed(source, ["AAA", "BBB"], "5m", clock, calendar="24/7", poll_delay=1.0)
    history = feed.history(10)
    assert _stamps(history) == [datetime(2025, 3, 3, 1, 5 * k, tzinfo=UTC) for k in range(2, 12)]
    assert all(set(g) == {"AAA", "BBB"} for g in history)
    live = []
    for group in feed:
        live.append(group)
        if len(live) == 6:
            break
    assert _stamps(live) == [datetime(2025, 3, 3, 2, 5 * k, tzinfo=UTC) for k in range(6)]
    assert clock.sleeps[0] == pytest.approx(3 * 60 + 1.0)  # until 02:05 (the 02:00 bar closes) + delay
    assert clock.now_value < datetime(2025, 3, 3, 2, 31, tzinfo=UTC)
    assert feed.stats.duplicates > 0 and feed.stats.partial > 0 and feed.stats.gaps == 0


def test_restart_resumes_after_the_saved_bar_without_skipping_or_repeating():
    clock = FakeClock(datetime(2025, 3, 3, 3, 1, tzinfo=UTC))
    feed = PollingBarFeed(TapeSource(tape(), clock), ["AAA", "BBB"], "5m", clock, calendar="24/7")
    feed.resume_after(datetime(2025, 3, 3, 1, 40, tzinfo=UTC))
    assert feed.history(0) == []
    caught_up = feed.poll()
    assert _stamps(caught_up) == [datetime(2025, 3, 3, 1, 45, tzinfo=UTC) + k * FIVE for k in range(15)]
    assert feed.poll() == [] and feed.stats.late == 0
    fresh = PollingBarFeed(TapeSource(tape(), clock), ["AAA", "BBB"], "5m", clock, calendar="24/7")
    assert _stamps(fresh.poll()) == [datetime(2025, 3, 3, 2, 55, tzinfo=UTC)]  # no warm-up: the newest bar only
    stale = PollingBarFeed(TapeSource(tape(), clock), ["AAA"], "5m", clock, max_catchup=timedelta(days=5))
    with pytest.raises(FeedError, match="last bar is 2025-02-25T00:00:00\\+00:00, 6 days ago: resuming would trade"):
        stale.resume_after(datetime(2025, 2, 25, tzinfo=UTC))


def test_missing_bars_are_a_recorded_gap(caplog):
    clock = FakeClock(datetime(2025, 3, 3, 1, 1, tzinfo=UTC))
    feed = PollingBarFeed(TapeSource(tape(drop={5, 6, (8, "BBB")}), clock), ["AAA", "BBB"], "5m", clock,
                          calendar="24/7")
    feed.resume_after(datetime(2025, 3, 3, 0, 10, tzinfo=UTC))
    with caplog.at_level(logging.WARNING):
        groups = feed.poll()
    assert len(groups) == 7 and feed.stats.gaps == 1 and feed.stats.missing_bars == 2
    assert feed.stats.absent == 1 and set(groups[3]) == {"AAA"}  # 00:40 has no BBB bar
    assert "gap of 2 5m bar(s) between 2025-03-03T00:20:00+00:00 and 2025-03-03T00:35:00+00:00" in caplog.text


def test_market_closed_waits_for_the_next_session_and_logs_once(caplog):
    clock = FakeClock(datetime(2025, 3, 8, 9, 0, tzinfo=UTC))  # Saturday on a 24/5 calendar
    monday = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
    feed = PollingBarFeed(TapeSource(tape(start=monday, n=20), clock), ["AAA"], "5m", clock, calendar="24/5",
                          poll_delay=0.5)
    feed.resume_after(datetime(2025, 3, 7, 23, 55, tzinfo=UTC))
    with caplog.at_level(logging.INFO):
        assert feed.poll() == []
        feed.wait()
        clock.now_value = datetime(2025, 3, 9, 9, 0, tzinfo=UTC)  # woken early (Sunday): still closed
        feed.wait()
        groups = feed.poll()
    assert clock.now_value == monday + FIVE + timedelta(seconds=0.5)
    assert _stamps(groups) == [monday] and feed.stats.gaps == 0
    assert caplog.text.count("market closed") == 1


def test_unreachable_provider_is_retried_with_backoff_then_raised():
    clock = FakeClock(datetime(2025, 3, 3, 1, 1, tzinfo=UTC))
    flaky = TapeSource(tape(), clock, failures=[FeedUnavailable("connection refused")] * 2)
    feed = PollingBarFeed(flaky, ["AAA", "BBB"], "5m", clock, calendar="24/7", max_retries=3, backoff=1.0)
    assert len(feed.history(5)) == 5
    assert clock.sleeps == [1.0, 2.0] and feed.stats.retries == 2
    down = TapeSource(tape(), clock, failures=[FeedUnavailable("connection refused")] * 9)
    feed = PollingBarFeed(down, ["AAA"], "5m", clock, calendar="24/7", max_retries=3, backoff=1.0)
    with pytest.raises(FeedUnavailable, match="tape: unreachable after 4 attempts: connection refused"):
        feed.poll()
    assert clock.sleeps[2:] == [1.0, 2.0, 4.0]


def test_unknown_symbol_and_permanent_errors_stop_at_once():
    clock = FakeClock(datetime(2025, 3, 3, 1, 1, tzinfo=UTC))
    feed = PollingBarFeed(TapeSource(tape(), clock), ["AAA", "NOPE"], "5m", clock, calendar="24/7")
    with pytest.raises(FeedError, match="no 5m bars for NOPE"):
        feed.history(5)
    broken = TapeSource(tape(), clock, failures=[FeedError("HTTP 403: forbidden")])
    feed = PollingBarFeed(broken, ["AAA"], "5m", clock, calendar="24/7")
    with pytest.raises(FeedError, match="403"):
        feed.poll()
    assert clock.sleeps == []


def test_replay_feed_resumes_after_and_paces_on_the_clock():
    clock = FakeClock(datetime(2025, 3, 3, tzinfo=UTC))
    feed = ReplayFeed(tape(n=10), FIVE, speed=60.0, clock=clock)
    feed.resume_after(datetime(2025, 3, 3, 0, 30, tzinfo=UTC))
    assert _stamps(list(feed)) == [datetime(2025, 3, 3, 0, 35, tzinfo=UTC) + k * FIVE for k in range(3)]
    assert clock.sleeps == [5.0, 5.0, 5.0]


def test_warm_up_fills_buffers_without_trading_or_counting():
    config = LiveConfig(retrain_enabled=False, checkpoint_interval=0, jit_inference=False)
    trainer = make_trainer(config=config, models=tiny_models(names=("lstm",)))
    trainer.start()
    clock = FakeClock(datetime(2025, 3, 3, 7, 21, tzinfo=UTC))
    feed = PollingBarFeed(TapeSource(tape(), clock), ["AAA", "BBB"], "5m", clock, calendar="24/7")
    assert trainer.warm_up(feed.history(80)) == 80
    assert trainer.bar_counter == 0 and len(trainer.bars["AAA"]) == 80 and trainer.pending.events == []
    assert trainer.last_timestamp == datetime(2025, 3, 3, 7, 15, tzinfo=UTC)
    feed.resume_after(trainer.last_timestamp)
    result = trainer.process_bar(next(iter(feed)))
    assert result["bar_counter"] == 1 and result["timestamp"] == datetime(2025, 3, 3, 7, 20, tzinfo=UTC)
    assert result["predictions"]  # warm features: the nets predict on the first live bar
    trainer.shutdown()

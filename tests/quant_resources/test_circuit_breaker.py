"""Circuit breaker state machine (seed 000 §4.6.6) and retry with exponential backoff."""

from __future__ import annotations

import random
import threading

import pytest

from quant_resources.circuit_breaker import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    backoff_delay,
    circuit_breaker,
    retry_with_backoff,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def test_closed_to_open_at_threshold_and_blocks_calls():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10, name="api", clock=clock)
    calls = []
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 2
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match="circuit 'api' is OPEN"):
        breaker.call(calls.append, 1)
    assert calls == []


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.call(lambda: 42) == 42
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED


def test_open_to_half_open_after_timeout_then_closed_on_success():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60.0, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.now += 59.9
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0


def test_half_open_failure_reopens_and_restarts_the_timeout():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=5.0, clock=clock)
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    clock.now += 5.0
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(Boom):
        breaker.call(fail)  # a single failure reopens
    assert breaker.state is CircuitState.OPEN
    clock.now += 4.0
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    clock.now += 1.0
    assert breaker.state is CircuitState.HALF_OPEN


def test_half_open_lets_a_single_trial_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.now += 1.0
    inside, release = threading.Event(), threading.Event()
    results = []

    def slow_trial():
        inside.set()
        release.wait(5)
        return "trial"

    worker = threading.Thread(target=lambda: results.append(breaker.call(slow_trial)))
    worker.start()
    inside.wait(5)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "second")
    release.set()
    worker.join(5)
    assert results == ["trial"] and breaker.state is CircuitState.CLOSED


def test_ignored_exceptions_propagate_without_tripping():
    breaker = CircuitBreaker(failure_threshold=1, ignored_exceptions=(KeyError,), clock=FakeClock())
    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call(lambda: {}["missing"])
    assert breaker.state is CircuitState.CLOSED


def test_decorator_shares_one_breaker():
    clock = FakeClock()

    @circuit_breaker(failure_threshold=2, recovery_timeout=30, name="yfinance", clock=clock)
    def fetch(ticker: str, fail_now: bool) -> str:
        if fail_now:
            raise Boom(ticker)
        return ticker.lower()

    assert fetch("AAPL", False) == "aapl"
    for _ in range(2):
        with pytest.raises(Boom):
            fetch("AAPL", True)
    with pytest.raises(CircuitOpenError, match="yfinance"):
        fetch("MSFT", False)
    assert fetch.circuit_breaker.state is CircuitState.OPEN
    assert fetch.__name__ == "fetch"


def test_thread_safety_counts_every_failure():
    breaker = CircuitBreaker(failure_threshold=10_000, clock=FakeClock())

    def hammer():
        for _ in range(500):
            with pytest.raises(Boom):
                breaker.call(fail)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.failure_count == 4000


def test_invalid_settings_rejected():
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="recovery_timeout"):
        CircuitBreaker(recovery_timeout=-1)


def test_retry_backoff_doubles_until_success():
    sleeps: list[float] = []
    attempts = iter([Boom("1"), Boom("2"), Boom("3"), "done"])

    def flaky():
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = retry_with_backoff(flaky, max_retries=5, base_delay=0.5, max_delay=60, jitter=0.0, sleep=sleeps.append)
    assert result == "done"
    assert sleeps == [0.5, 1.0, 2.0]


def test_retry_gives_up_after_max_retries_and_caps_delay():
    sleeps: list[float] = []
    calls = []

    def always():
        calls.append(1)
        raise Boom("still down")

    with pytest.raises(Boom, match="still down"):
        retry_with_backoff(always, max_retries=4, base_delay=1.0, max_delay=3.0, jitter=0.0, sleep=sleeps.append)
    assert len(calls) == 5
    assert sleeps == [1.0, 2.0, 3.0, 3.0]


def test_retry_only_on_listed_exceptions():
    sleeps: list[float] = []
    calls = []

    def wrong_kind():
        calls.append(1)
        raise KeyError("permanent")

    with pytest.raises(KeyError):
        retry_with_backoff(wrong_kind, max_retries=3, retry_on=(Boom,), sleep=sleeps.append)
    assert calls == [1] and sleeps == []


def test_jitter_stays_in_band_and_is_seedable():
    delays = [backoff_delay(2, 1.0, 60.0, 0.25, random.Random(s)) for s in range(200)]
    assert all(3.0 <= d <= 5.0 for d in delays)
    assert len(set(delays)) > 100
    first = backoff_delay(3, 1.0, 60.0, 0.5, random.Random(7))
    assert first == backoff_delay(3, 1.0, 60.0, 0.5, random.Random(7))


def test_retry_through_breaker_stops_when_circuit_opens():
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60, clock=FakeClock())
    sleeps: list[float] = []
    with pytest.raises(CircuitOpenError):
        retry_with_backoff(lambda: breaker.call(fail), max_retries=10, base_delay=1, jitter=0,
                           retry_on=(Boom,), sleep=sleeps.append)
    assert sleeps == [1, 2]

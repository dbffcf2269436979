"""Circuit breaker and retry with exponential backoff for calls to external services.

State machine (seed 000 §4.6.6):

- CLOSED -> OPEN: `failure_threshold` consecutive failures.
- OPEN -> HALF_OPEN: `recovery_timeout` seconds after opening (checked lazily on access).
- HALF_OPEN -> CLOSED: the trial call succeeds.
- HALF_OPEN -> OPEN: the trial call fails.

Defaults follow the settings `circuit_breaker_failure_threshold` (5) and
`circuit_breaker_recovery_timeout` (60 s).
"""

from __future__ import annotations

import enum
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    """Raised instead of calling the service while the circuit is open."""

    def __init__(self, name: str, retry_in: float):
        super().__init__(f"circuit '{name}' is OPEN; calls blocked for another {retry_in:.1f}s")
        self.name = name
        self.retry_in = retry_in


class CircuitBreaker:
    """Thread-safe circuit breaker.

    `failure_exceptions`: exceptions that count as failures of the service (default: any).
    `ignored_exceptions`: exceptions that propagate but prove the service answered (e.g. "no data
    for this ticker"); they count as a success. `clock` is injectable for tests.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        name: str = "default",
        clock: Callable[[], float] = time.monotonic,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        ignored_exceptions: tuple[type[BaseException], ...] = (),
    ):
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if recovery_timeout < 0:
            raise ValueError(f"recovery_timeout must be >= 0, got {recovery_timeout}")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.name = name
        self._clock = clock
        self._failure_exceptions = failure_exceptions
        self._ignored_exceptions = ignored_exceptions
        self._lock = threading.RLock()
        self._state = CircuitState.CLOSED
        self._failure_count = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.recovery_timeout:
                self._state = CircuitState.HALF_OPEN
                self._trial_in_flight = False
                logger.info("circuit '%s' OPEN -> HALF_OPEN", self.name)
            return self._state

    @property
    def failure_count(self) -> int:
        with self._lock:
            return self._failure_count

    def reset(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failure_count = 0
            self._trial_in_flight = False

    def _before_call(self) -> None:
        with self._lock:
            state = self.state
            if state is CircuitState.OPEN:
                raise CircuitOpenError(self.name, self.recovery_timeout - (self._clock() - self._opened_at))
            if state is CircuitState.HALF_OPEN:
                if self._trial_in_flight:
                    raise CircuitOpenError(self.name, 0.0)
                self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                logger.info("circuit '%s' %s -> CLOSED", self.name, self._state.name)
            self._state = CircuitState.CLOSED
            self._failure_count = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failure_count += 1
            self._trial_in_flight = False
            if self._state is CircuitState.HALF_OPEN or (
                self._state is CircuitState.CLOSED and self._failure_count >= self.failure_threshold
            ):
                logger.warning(
                    "circuit '%s' %s -> OPEN after %d failures", self.name, self._state.name, self._failure_count
                )
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()

    def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `func` under the breaker; raise CircuitOpenError without calling it while OPEN."""
        self._before_call()
        try:
            result = func(*args, **kwargs)
        except self._ignored_exceptions:
            self.record_success()
            raise
        except self._failure_exceptions:
            self.record_failure()
            raise
        except BaseException:
            with self._lock:
                self._trial_in_flight = False
            raise
        self.record_success()
        return result

    def __call__(self, func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(func, *args, **kwargs)

        wrapper.circuit_breaker = self  # type: ignore[attr-defined]
        return wrapper

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.name}, failures={self.failure_count})"


def circuit_breaker(
    failure_threshold: int = 5,
    recovery_timeout: float = 60.0,
    name: str = "default",
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator: `@circuit_breaker(failure_threshold=3, name="yfinance")`; the breaker is
    reachable as `decorated.circuit_breaker`."""
    return CircuitBreaker(failure_threshold, recovery_timeout, name, clock)


def backoff_delay(attempt: int, base_delay: float, max_delay: float, jitter: float, rng: random.Random) -> float:
    """min(max_delay, base_delay * 2**attempt) scaled by a uniform factor in [1 - jitter, 1 + jitter]."""
    delay = min(max_delay, base_delay * (2.0**attempt))
    if jitter:
        delay *= 1.0 + rng.uniform(-jitter, jitter)
    return max(0.0, delay)


def retry_with_backoff(
    fn: Callable[[], T],
    max_retries: int = 3,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call `fn()`; on an exception in `retry_on` sleep `backoff_delay(attempt)` and try again,
    at most `max_retries` times (seed 004 §8.1: delay = base * 2^attempt). The last exception
    propagates; exceptions outside `retry_on` propagate at once."""
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be in [0, 1], got {jitter}")
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return fn()
        except retry_on as error:
            if attempt >= max_retries:
                raise
            delay = backoff_delay(attempt, base_delay, max_delay, jitter, rng)
            logger.warning("attempt %d failed (%s: %s); retrying in %.2fs", attempt + 1, type(error).__name__, error, delay)
            if on_retry is not None:
                on_retry(attempt, error, delay)
            sleep(delay)
            attempt += 1

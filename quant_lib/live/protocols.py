"""What the live loop needs from the outside world, as small protocols (implemented in quant_resources)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StateStore(Protocol):
    """``quant_resources.state.SystemStateManager``: atomic checkpoints with backups."""

    def save(self, state: Mapping[str, Any]) -> Any: ...

    def load(self) -> dict[str, Any] | None: ...


@runtime_checkable
class LedgerSink(Protocol):
    """Durable home of ledger events (orders, fills, equity). ``write_segment(segment, events)``
    writes the events recorded since the previous checkpoint as one unit named ``segment`` (the
    bar counter, or the previous segment + 1 for a second checkpoint on the same bar; numbers
    only grow); writing the same segment again replaces it, so a replay after a crash never
    duplicates an event."""

    def write_segment(self, segment: int, events: list[dict[str, Any]]) -> Any: ...

    def discard_after(self, segment: int) -> int:
        """Remove segments newer than ``segment`` (written after the checkpoint a restart resumes
        from: the replay writes them again); returns how many were removed."""


@runtime_checkable
class Executor(Protocol):
    """Paper (``quant_lib.execution.PaperExecutor``) or live (``quant_resources.brokers``) broker."""

    def submit_order(self, symbol: str, side: str, qty: float, price: float, client_order_id: str | None = None,
                     timestamp: Any = None) -> dict[str, Any]: ...

    def close_all_positions(self, prices: Mapping[str, float] | None = None, timestamp: Any = None,
                            decision: str | None = None) -> list[dict[str, Any]]: ...

    def get_portfolio_state(self) -> dict[str, Any]: ...

    def update_market_prices(self, prices: Mapping[str, float]) -> None: ...


@runtime_checkable
class BarFeatures(Protocol):
    """Per-symbol features, computed incrementally bar by bar, and in bulk for retraining.

    ``update(symbol, bar)`` returns the newest normalised feature row (None while warming up);
    ``training_set(frame)`` gives (features [T, n_features], targets [T]) for a frame of past bars
    of one symbol (target t = log(close[t+1] / close[t]); NaN where unknown)."""

    n_features: int

    def update(self, symbol: str, bar: Mapping[str, float]) -> Any: ...

    def training_set(self, frame: Any) -> tuple[Any, Any]: ...

    def get_state(self) -> dict[str, Any]: ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...

"""Worker-side task bodies of ``quant_resources.compute``.

Kept free of heavy imports (standard library only) because every spawned process and Ray
worker imports this module before running a task; ``quant_resources.compute`` itself imports
dagster, which would cost seconds per worker.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable, Sequence
from typing import Any

_WORKER_FUNCTIONS: dict[str, Callable[[Any], Any]] = {}
_WORKER_FUNCTIONS_MAX = 4


def run_task(fn: Callable[[Any], Any], item: Any) -> dict[str, Any]:
    """Apply ``fn`` to one item, capturing any exception as a failed status."""
    try:
        return {"status": "success", "result": fn(item)}
    except Exception as exc:  # noqa: BLE001 - every task failure is reported, never lost
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def run_chunk(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
    """``run_task`` over a chunk of items (one pickled ``fn`` per chunk)."""
    return [run_task(fn, item) for item in items]


def _remember(key: str, fn: Callable[[Any], Any]) -> None:
    while len(_WORKER_FUNCTIONS) >= _WORKER_FUNCTIONS_MAX:
        _WORKER_FUNCTIONS.pop(next(iter(_WORKER_FUNCTIONS)))
    _WORKER_FUNCTIONS[key] = fn


def run_pickled_chunk(key: str, payload_path: str, items: Sequence[Any]) -> list[dict[str, Any]]:
    """Process-pool task body: ``fn`` was pickled once by the driver into ``payload_path`` and is
    loaded once per worker process for each distinct ``key``."""
    fn = _WORKER_FUNCTIONS.get(key)
    if fn is None:
        with open(payload_path, "rb") as handle:
            fn = pickle.load(handle)
        _remember(key, fn)
    return run_chunk(fn, items)


def run_task_by_reference(fn_holder: list, item: Any) -> dict[str, Any]:
    """Ray task body: ``fn`` arrives as a nested ObjectRef (which Ray does not resolve) and is
    deserialised once per worker process, then reused by later tasks mapping the same ``fn``."""
    import ray

    (fn_ref,) = fn_holder
    key = fn_ref.hex()
    fn = _WORKER_FUNCTIONS.get(key)
    if fn is None:
        try:
            fn = ray.get(fn_ref)
        except Exception as exc:  # noqa: BLE001 - e.g. fn's module cannot be imported on the worker
            return {
                "status": "failed",
                "error": f"could not load fn on the worker: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        _remember(key, fn)
    return run_task(fn, item)

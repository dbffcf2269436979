"""Compute backend: fan embarrassingly parallel work (GA fitness, backtest sweeps, walk-forward
folds) out to local processes or a Ray cluster (seed 000 §4.6.1 ``DistributedBacktester``).

Two faces over the same engines:

- ``make_backend(kind, max_workers, address)`` -> a plain object for scripts and notebooks;
- ``ComputeBackend``: a Dagster ``ConfigurableResource`` that builds one lazily and closes it
  after the step.

``fn`` is treated as immutable between calls: mapping the same object again reuses its
serialised copy. Every backend offers ``map(fn, items) -> list`` (order preserved; the first failed item raises
``TaskFailedError`` naming its index and the item) and ``map_results(fn, items) -> list[dict]``
(per item ``{"index", "item", "status": "success", "result"}`` or ``{..., "status": "failed",
"error", "traceback"}``, the seed's ``run_batch`` contract). ``map`` has the ``map_fn`` signature
of ``quant_lib.research.GeneticOptimizer``, so ``GeneticOptimizer(..., map_fn=backend.map)``
parallelises the GA.

Engines:

- ``serial``: in-process loop (what ``local`` uses with ``max_workers=1``).
- ``local``: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (safe with
  threads, polars and torch). The pool persists across calls; ``fn`` and the items must be
  picklable (module-level functions or ``functools.partial`` of them). ``fn`` - with any data
  bound into it - is pickled once by the driver into a temporary file (again only when a
  different ``fn`` is mapped) and loaded once per worker, so only the items travel with each
  task; items go in small chunks (about eight per worker) for dynamic load balancing.
- ``ray``: plain Ray core. ``fn`` is put in the object store once (again only when a different
  ``fn`` is mapped) and one generic remote task per item applies it; each worker process
  deserialises ``fn`` - with any large data bound into it - once and caches it, so a GA that maps
  the same fitness every generation ships its data to each worker once. Without an
  address a local Ray instance is started with ``num_cpus=max_workers``, no dashboard and no
  usage stats; with ``ray_address`` (or env ``RAY_ADDRESS``) it connects to that cluster.

The task bodies live in ``quant_resources._compute_worker`` (standard library only), so a worker
process does not import dagster just to run a task.

Why plain Ray and not dagster-ray: ``dagster_ray.LocalRay`` / ``RayResource`` (0.4.8) only manage
the cluster lifecycle inside Dagster's resource initialisation (they call ``ray.init`` with
``ray_init_options`` and push Ray Data settings via an extra remote task); they offer no map /
fan-out API and cannot be used from a plain script. So this module calls Ray directly, but it
composes with dagster-ray: when Ray is already initialised in the process (for instance by a
``LocalRay`` or ``KubeRayCluster`` resource of the same run) the Ray backend reuses that
connection and leaves its shutdown to its owner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import hashlib
import math
import multiprocessing
import os
import pickle
import tempfile
import traceback
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from quant_resources._compute_worker import run_chunk, run_pickled_chunk, run_task, run_task_by_reference

BACKEND_KINDS = ("serial", "local", "ray")

__all__ = [
    "BACKEND_KINDS",
    "ComputeBackend",
    "MapBackend",
    "ProcessPoolBackend",
    "RayBackend",
    "SerialBackend",
    "TaskFailedError",
    "make_backend",
    "raise_on_failure",
    "run_chunk",
    "run_pickled_chunk",
    "run_task",
    "run_task_by_reference",
]


class TaskFailedError(RuntimeError):
    """A task of a ``map`` call failed; ``index``/``item`` say which, ``error`` says why."""

    def __init__(self, index: int, item: Any, error: str, task_traceback: str = "") -> None:
        item_text = repr(item)
        if len(item_text) > 300:
            item_text = item_text[:300] + "..."
        super().__init__(f"task {index} failed for item {item_text}: {error}")
        self.index = index
        self.item = item
        self.error = error
        self.task_traceback = task_traceback


def _with_items(outcomes: Sequence[dict[str, Any]], items: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"index": index, "item": item, **outcome} for index, (item, outcome) in enumerate(zip(items, outcomes))]


def raise_on_failure(outcomes: Sequence[dict[str, Any]]) -> list[Any]:
    """Results of ``map_results`` in order, or ``TaskFailedError`` for the first failed item."""
    for outcome in outcomes:
        if outcome["status"] != "success":
            raise TaskFailedError(outcome["index"], outcome["item"], outcome["error"], outcome.get("traceback", ""))
    return [outcome["result"] for outcome in outcomes]


class MapBackend(Protocol):
    kind: str
    max_workers: int

    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]: ...

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...

    def close(self) -> None: ...


class _BackendBase(ABC):
    kind = "base"
    max_workers = 1

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[fn(item) for item in items]`` in order; raises ``TaskFailedError`` naming a failed item."""
        return raise_on_failure(self.map_results(fn, items))

    @abstractmethod
    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
        """One ``{"status": "success", "result": ...}`` or ``{"status": "failed", "error": ...}`` per item."""

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SerialBackend(_BackendBase):
    """In-process evaluation, one item after the other."""

    kind = "serial"

    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
        items = list(items)
        return _with_items(run_chunk(fn, items), items)


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class ProcessPoolBackend(_BackendBase):
    """A persistent spawn-based ``ProcessPoolExecutor`` with ``max_workers`` processes."""

    kind = "local"

    def __init__(self, max_workers: int = 2, chunks_per_worker: int = 8) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.chunks_per_worker = chunks_per_worker
        self._executor: ProcessPoolExecutor | None = None
        self._shared_fn: Any = None
        self._shared_payload: tuple[str, str] | None = None
        self._payload_cleanup: weakref.finalize | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    def _payload(self, fn: Callable[[Any], Any]) -> tuple[str, str]:
        """``(key, path)`` of ``fn`` pickled once into a temporary file (again only when a different
        ``fn`` is mapped); the file is removed when ``fn`` changes or the backend closes."""
        if self._shared_fn is not fn or self._shared_payload is None:
            try:
                payload = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TypeError(
                    f"fn {fn!r} cannot be pickled for a worker process ({type(exc).__name__}: {exc}); "
                    "use a module-level function or a functools.partial of one"
                ) from exc
            self._drop_payload()
            descriptor, path = tempfile.mkstemp(prefix="quant-compute-", suffix=".pkl")
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
            self._payload_cleanup = weakref.finalize(self, _remove_file, path)
            self._shared_fn = fn
            self._shared_payload = (hashlib.blake2b(payload, digest_size=16).hexdigest(), path)
        return self._shared_payload

    def _drop_payload(self) -> None:
        if self._payload_cleanup is not None:
            self._payload_cleanup()
        self._shared_fn = self._shared_payload = self._payload_cleanup = None

    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
        items = list(items)
        if not items:
            return []
        key, payload_path = self._payload(fn)
        chunk_size = max(1, math.ceil(len(items) / (self.max_workers * self.chunks_per_worker)))
        starts = range(0, len(items), chunk_size)
        pool = self._pool()
        futures = [
            pool.submit(run_pickled_chunk, key, payload_path, items[start : start + chunk_size]) for start in starts
        ]
        outcomes: list[dict[str, Any]] = []
        for start, future in zip(starts, futures):
            try:
                outcomes.extend(future.result())
            except Exception as exc:
                chunk = items[start : start + chunk_size]
                raise TaskFailedError(
                    start,
                    chunk[0],
                    f"could not run the chunk of items {start}..{start + len(chunk) - 1} in a worker process "
                    f"({type(exc).__name__}: {exc}); items must be picklable and fn must not kill the worker",
                ) from exc
        return _with_items(outcomes, items)

    def close(self) -> None:
        self._drop_payload()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


_RAY_TASK = None


def _ray_task():
    """The generic remote task, created once per driver process."""
    global _RAY_TASK
    if _RAY_TASK is None:
        import ray

        _RAY_TASK = ray.remote(num_cpus=1, max_retries=0)(run_task_by_reference)
    return _RAY_TASK


class RayBackend(_BackendBase):
    """Ray core tasks. Starts a local instance (``num_cpus=max_workers``) unless ``address`` (or
    env ``RAY_ADDRESS``) names a cluster, or Ray is already initialised in this process."""

    kind = "ray"

    def __init__(self, max_workers: int = 2, address: str | None = None, start_attempts: int = 2) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.start_attempts = max(1, start_attempts)
        self._shared_fn: Any = None
        self._shared_ref: Any = None
        self._owns_ray = False

    def start(self) -> None:
        """Connect (or start the local instance) now; ``map`` does it lazily otherwise."""
        import ray

        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
        options: dict[str, Any] = {
            "include_dashboard": False,
            "ignore_reinit_error": True,
            "log_to_driver": False,
        }
        if self.address:
            ray.init(address=self.address, **options)
        else:
            for attempt in range(1, self.start_attempts + 1):
                try:
                    ray.init(address="local", num_cpus=self.max_workers, **options)
                    break
                except Exception as exc:
                    # Ray 2.x's raylet aborts when its metrics agent has not written its port
                    # file within a fixed 15 s; on a CPU-starved host the agent's imports can
                    # take longer. A second start usually succeeds.
                    ray.shutdown()
                    if attempt == self.start_attempts or "timed out during startup" not in str(exc):
                        raise
        self._owns_ray = True

    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
        import ray

        items = list(items)
        if not items:
            return []
        self.start()
        task = _ray_task()
        if self._shared_fn is not fn:
            self._shared_fn, self._shared_ref = fn, ray.put(fn)
        refs = [task.remote([self._shared_ref], item) for item in items]
        outcomes: list[dict[str, Any]] = []
        for index, ref in enumerate(refs):
            try:
                outcomes.append(ray.get(ref))
            except Exception as exc:  # worker crash, unpicklable fn: Ray raises on get
                outcomes.append(
                    {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                )
        return _with_items(outcomes, items)

    def close(self) -> None:
        """Shut Ray down if this backend started it (a connection owned by others is left alone)."""
        self._shared_fn = self._shared_ref = None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False


def make_backend(kind: str = "local", max_workers: int = 2, address: str | None = None) -> MapBackend:
    """A compute backend for scripts: ``serial``, ``local`` (processes; serial when
    ``max_workers == 1``) or ``ray``. Use it as a context manager or call ``close()``."""
    if kind not in BACKEND_KINDS:
        raise ValueError(f"unknown compute backend {kind!r}; expected one of {BACKEND_KINDS}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if kind == "serial" or (kind == "local" and max_workers == 1):
        return SerialBackend()
    if kind == "local":
        return ProcessPoolBackend(max_workers)
    return RayBackend(max_workers, address)


class ComputeBackend(ConfigurableResource):
    """Dagster resource over ``make_backend``: ``backend`` is ``local`` (process pool), ``ray`` or
    ``serial``; ``ray_address`` (or env ``RAY_ADDRESS``) selects a real Ray cluster, otherwise a
    local Ray instance with ``max_workers`` CPUs is started on first use and shut down after the
    step."""

    backend: str = "local"
    max_workers: int = 2
    ray_address: str | None = None

    _engine: Any = PrivateAttr(default=None)

    def get_backend(self) -> MapBackend:
        if self._engine is None:
            self._engine = make_backend(self.backend, self.max_workers, self.ray_address)
        return self._engine

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Ordered results of ``fn`` over ``items``; ``TaskFailedError`` names a failed item."""
        return self.get_backend().map(fn, items)

    def map_results(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[dict[str, Any]]:
        """Per-item status dicts (``success`` with ``result`` or ``failed`` with ``error``)."""
        return self.get_backend().map_results(fn, items)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

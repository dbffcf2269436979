"""Compute backends: serial, spawn process pool and Ray give the same ordered results, and a
failing item is reported by index and value (seed 000 §4.6.1 run_batch contract).

The task functions below are pickled by reference, so every spawned process and Ray worker
imports this module: it keeps its top-level imports to the standard library and pytest and
imports the library (dagster alone takes seconds) inside the tests.
"""

from __future__ import annotations

import functools
import math
import os

import pytest

os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

ITEMS = [{"x": x, "y": 0.1 * x} for x in range(8)]


def planted_quadratic(params: dict) -> float:
    """Toy fitness with its maximum 0 at x=3, y=0.7."""
    return -((params["x"] - 3) ** 2) - (params["y"] - 0.7) ** 2


def scaled_log(item: dict, scale: float) -> float:
    return scale * math.log1p(item["x"] + item["y"])


def fails_on_five(item: dict) -> float:
    if item["x"] == 5:
        raise ValueError("x=5 is not allowed")
    return float(item["x"])


EXPECTED = [planted_quadratic(item) for item in ITEMS]


@pytest.fixture(scope="module")
def ray_backend():
    from quant_resources.compute import RayBackend

    backend = RayBackend(max_workers=2)
    backend.start()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def process_backend():
    from quant_resources.compute import ProcessPoolBackend

    backend = ProcessPoolBackend(max_workers=2)
    yield backend
    backend.close()


def test_make_backend_kinds_and_bad_input():
    from quant_resources.compute import ProcessPoolBackend, RayBackend, SerialBackend, make_backend

    assert isinstance(make_backend("local", max_workers=1), SerialBackend)
    assert isinstance(make_backend("serial", max_workers=4), SerialBackend)
    assert isinstance(make_backend("local", max_workers=2), ProcessPoolBackend)
    assert isinstance(make_backend("ray", max_workers=2), RayBackend)
    with pytest.raises(ValueError, match="unknown compute backend 'dask'"):
        make_backend("dask")
    with pytest.raises(ValueError, match="max_workers"):
        make_backend("local", max_workers=0)


def test_serial_map_preserves_order_and_reports_failures():
    from quant_resources.compute import SerialBackend, TaskFailedError

    backend = SerialBackend()
    assert backend.map(planted_quadratic, ITEMS) == EXPECTED
    outcomes = backend.map_results(fails_on_five, ITEMS)
    assert [o["status"] for o in outcomes] == ["success"] * 5 + ["failed"] + ["success"] * 2
    assert outcomes[5]["index"] == 5 and outcomes[5]["item"] == ITEMS[5]
    assert "ValueError: x=5 is not allowed" in outcomes[5]["error"]
    with pytest.raises(TaskFailedError, match=r"task 5 failed for item \{'x': 5") as excinfo:
        backend.map(fails_on_five, ITEMS)
    assert excinfo.value.index == 5


def test_process_pool_matches_serial(process_backend):
    assert process_backend.map(planted_quadratic, ITEMS) == EXPECTED
    bound = functools.partial(scaled_log, scale=2.0)
    assert process_backend.map(bound, ITEMS) == [bound(item) for item in ITEMS]
    assert process_backend.map(planted_quadratic, []) == []


def test_process_pool_names_failed_item(process_backend):
    from quant_resources.compute import TaskFailedError

    outcomes = process_backend.map_results(fails_on_five, ITEMS)
    assert [o["result"] for o in outcomes if o["status"] == "success"] == [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0]
    with pytest.raises(TaskFailedError, match="task 5 failed"):
        process_backend.map(fails_on_five, ITEMS)


def test_process_pool_rejects_unpicklable_function(process_backend):
    offset = 1.0
    with pytest.raises(TypeError, match="cannot be pickled for a worker process"):
        process_backend.map(lambda item: item["x"] + offset, ITEMS)


def test_ray_matches_local(ray_backend, process_backend):
    ray_results = ray_backend.map(planted_quadratic, ITEMS)
    assert ray_results == process_backend.map(planted_quadratic, ITEMS) == EXPECTED
    bound = functools.partial(scaled_log, scale=0.5)
    assert ray_backend.map(bound, ITEMS) == [bound(item) for item in ITEMS]


def test_ray_reports_failed_item(ray_backend):
    from quant_resources.compute import TaskFailedError

    outcomes = ray_backend.map_results(fails_on_five, ITEMS)
    assert [o["status"] for o in outcomes].count("failed") == 1
    assert outcomes[5]["status"] == "failed" and "x=5 is not allowed" in outcomes[5]["error"]
    with pytest.raises(TaskFailedError, match=r"task 5 failed for item \{'x': 5"):
        ray_backend.map(fails_on_five, ITEMS)


def test_ga_on_ray_equals_serial_ga(ray_backend):
    from quant_lib.research import GeneticOptimizer

    ranges = {"x": (0, 10, int), "y": (0.0, 1.0, float)}
    serial = GeneticOptimizer(planted_quadratic, ranges, population_size=12, n_generations=4, seed=3).run()
    distributed = GeneticOptimizer(
        planted_quadratic, ranges, population_size=12, n_generations=4, seed=3, map_fn=ray_backend.map
    ).run()
    assert distributed.best_params == serial.best_params
    assert distributed.best_fitness == serial.best_fitness
    assert distributed.all_evaluations.equals(serial.all_evaluations)


def test_dagster_resource_delegates_and_closes(ray_backend):
    import ray

    from quant_resources.compute import ComputeBackend

    resource = ComputeBackend(backend="ray", max_workers=2)
    assert resource.map(planted_quadratic, ITEMS) == EXPECTED
    assert resource.map_results(fails_on_five, ITEMS)[5]["status"] == "failed"
    resource.close()
    assert ray.is_initialized(), "a backend must not shut down a Ray instance it did not start"
    local = ComputeBackend(backend="local", max_workers=1)
    assert local.map(planted_quadratic, ITEMS) == EXPECTED
    with pytest.raises(ValueError, match="unknown compute backend"):
        ComputeBackend(backend="spark").map(planted_quadratic, ITEMS)


def test_resource_inside_a_dagster_run():
    import dagster as dg

    from quant_resources.compute import ComputeBackend

    @dg.asset(required_resource_keys={"compute"})
    def squared_fitness(context):
        return context.resources.compute.map(planted_quadratic, ITEMS)

    result = dg.materialize([squared_fitness], resources={"compute": ComputeBackend(backend="serial")})
    assert result.success
    assert result.output_for_node("squared_fitness") == EXPECTED


def test_process_pool_ships_fn_once_through_a_temporary_file_it_removes(process_backend):
    import pathlib

    bound = functools.partial(scaled_log, scale=3.0)
    assert process_backend.map(bound, ITEMS) == [bound(item) for item in ITEMS]
    _, first_path = process_backend._shared_payload
    assert pathlib.Path(first_path).exists()
    assert process_backend.map(bound, ITEMS[:3]) == [bound(item) for item in ITEMS[:3]]
    assert process_backend._shared_payload[1] == first_path, "the same fn is not pickled again"
    assert process_backend.map(planted_quadratic, ITEMS) == EXPECTED
    assert not pathlib.Path(first_path).exists(), "the previous fn's file is removed"
    _, second_path = process_backend._shared_payload
    process_backend.close()
    assert not pathlib.Path(second_path).exists()
    assert process_backend.map(planted_quadratic, ITEMS[:2]) == EXPECTED[:2], "a closed pool restarts on demand"

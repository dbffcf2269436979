"""GeneticOptimizer (DEAP): planted optimum, determinism, caching, batching, bad input."""

from __future__ import annotations

import random
import warnings

import numpy as np
import polars as pl
import pytest

from quant_lib.research import GeneticOptimizer, parse_param_ranges

RANGES = {"x": (0, 10, int), "y": (0.0, 1.0, float)}


def planted(params: dict) -> float:
    """Maximum 0 at x=3, y=0.7."""
    return -((params["x"] - 3) ** 2) - (params["y"] - 0.7) ** 2


class RecordingMap:
    """A map_fn that records every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []

    def __call__(self, fn, params_list):
        self.batches.append([dict(p) for p in params_list])
        return [fn(p) for p in params_list]


def test_finds_planted_optimum_of_mixed_int_float_problem():
    result = GeneticOptimizer(planted, RANGES, population_size=30, n_generations=15, seed=7).run()
    assert result.best_params["x"] == 3
    assert isinstance(result.best_params["x"], int)
    assert result.best_params["y"] == pytest.approx(0.7, abs=0.02)
    assert result.best_fitness == pytest.approx(planted(result.best_params))
    assert result.best_fitness > -4e-4
    assert result.hall_of_fame[0] == result.best_params


def test_same_seed_same_search_and_other_seed_differs():
    first = GeneticOptimizer(planted, RANGES, population_size=20, n_generations=6, seed=11).run()
    second = GeneticOptimizer(planted, RANGES, population_size=20, n_generations=6, seed=11).run()
    other = GeneticOptimizer(planted, RANGES, population_size=20, n_generations=6, seed=12).run()
    assert first.best_params == second.best_params
    assert first.best_fitness == second.best_fitness
    assert first.all_evaluations.equals(second.all_evaluations)
    assert first.history.equals(second.history)
    assert not first.all_evaluations.equals(other.all_evaluations)


def test_run_restores_global_random_states():
    random.seed(123)
    np.random.seed(123)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    GeneticOptimizer(planted, RANGES, population_size=10, n_generations=2, seed=0).run()
    assert random.random() == expected_python
    assert np.random.random() == expected_numpy


def test_each_generation_is_one_batch_of_distinct_uncached_params():
    recorder = RecordingMap()
    result = GeneticOptimizer(
        planted, RANGES, population_size=16, n_generations=5, seed=1, map_fn=recorder
    ).run()
    assert len(recorder.batches) <= 6
    flat = [tuple(p.values()) for batch in recorder.batches for p in batch]
    assert len(flat) == len(set(flat)), "a parameter set was evaluated twice"
    assert len(flat) == result.n_evaluations == result.all_evaluations.height
    assert result.history["n_evaluated"].sum() == result.n_evaluations
    assert result.history["generation"].to_list() == list(range(6))
    reference = GeneticOptimizer(planted, RANGES, population_size=16, n_generations=5, seed=1).run()
    assert reference.all_evaluations.equals(result.all_evaluations)


def test_integer_only_space_is_exhausted_without_reevaluation():
    calls: list[int] = []

    def count_calls(params):
        calls.append(params["n"])
        return float(params["n"])

    result = GeneticOptimizer(count_calls, {"n": (1, 4, int)}, population_size=12, n_generations=8, seed=2).run()
    assert sorted(calls) == sorted(set(calls))
    assert set(calls) <= {1, 2, 3, 4}
    assert result.best_params == {"n": 4}
    assert result.all_evaluations.schema["n"] == pl.Int64


def test_evaluation_log_and_history_columns():
    result = GeneticOptimizer(planted, RANGES, population_size=8, n_generations=3, seed=4).run()
    assert result.all_evaluations.columns == ["x", "y", "fitness", "generation"]
    assert result.all_evaluations.schema["y"] == pl.Float64
    assert result.all_evaluations["x"].is_between(0, 10).all()
    assert result.all_evaluations["y"].is_between(0.0, 1.0).all()
    assert result.history.columns == ["generation", "n_evaluated", "mean", "std", "min", "max", "best_so_far"]
    best_so_far = result.history["best_so_far"].to_list()
    assert best_so_far == sorted(best_so_far)
    assert best_so_far[-1] == result.best_fitness == result.all_evaluations["fitness"].max()


def test_minimize_and_tuple_fitness():
    def distance(params):
        return (abs(params["x"] - 8) + abs(params["y"] - 0.2),)

    result = GeneticOptimizer(distance, RANGES, population_size=24, n_generations=12, seed=5, maximize=False).run()
    assert result.best_params["x"] == 8
    assert result.best_params["y"] == pytest.approx(0.2, abs=0.03)
    assert result.best_fitness == result.all_evaluations["fitness"].min()


def test_non_finite_fitness_ranks_last():
    def undefined_below_five(params):
        return float("nan") if params["x"] < 5 else -float(params["x"])

    result = GeneticOptimizer(undefined_below_five, RANGES, population_size=16, n_generations=4, seed=3).run()
    assert result.best_params["x"] == 5
    assert result.all_evaluations["fitness"].is_nan().any()


def test_creator_classes_are_created_once():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GeneticOptimizer(planted, RANGES, population_size=4, n_generations=0)
        GeneticOptimizer(planted, RANGES, population_size=4, n_generations=0, maximize=False)
        GeneticOptimizer(planted, RANGES, population_size=4, n_generations=0)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({}, "param_ranges is empty"),
        ({"x": (5, 1, int)}, r"param_ranges\['x'\] needs finite low <= high"),
        ({"x": (0, 1, str)}, r"param_ranges\['x'\] type must be int or float"),
        ({"x": (0.5, 3, int)}, r"param_ranges\['x'\] is int but bounds"),
        ({"x": (0, 1)}, r"param_ranges\['x'\] must be \(low, high, int\|float\)"),
    ],
)
def test_bad_param_ranges(ranges, message):
    with pytest.raises(ValueError, match=message):
        parse_param_ranges(ranges)


def test_bad_settings_and_bad_map_fn():
    with pytest.raises(ValueError, match="cxpb"):
        GeneticOptimizer(planted, RANGES, cxpb=1.5)
    with pytest.raises(ValueError, match="population_size"):
        GeneticOptimizer(planted, RANGES, population_size=1)
    with pytest.raises(ValueError, match="map_fn returned 1 fitness values for 6"):
        GeneticOptimizer(planted, RANGES, population_size=6, map_fn=lambda fn, ps: [0.0]).run()
    with pytest.raises(ValueError, match="is not a number"):
        GeneticOptimizer(lambda p: "high", RANGES, population_size=4).run()

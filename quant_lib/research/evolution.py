"""DEAP genetic algorithm for strategy hyper-parameters (seed 000 §4.3.3, §7.2.1).

The search is a real-coded GA: every gene is a float inside its bounds; integer parameters are
decoded by rounding (the gene spans ``[low - 0.5, high + 0.5]`` so each integer gets the same
share of the line). Variation uses DEAP's bounded operators for real-coded GAs (Deb & Agrawal
1995; Deb 2001): simulated binary crossover ``cxSimulatedBinaryBounded`` and polynomial mutation
``mutPolynomialBounded``; selection is ``selTournament``. The loop is DEAP's ``eaSimple``
(select -> ``varAnd`` -> evaluate -> hall of fame) except that each generation's new individuals
are evaluated in ONE batch through ``map_fn`` so a compute backend (process pool, Ray) can fan
the evaluations out. Fitness values are cached by decoded parameters: a duplicate individual is
never evaluated twice, and every distinct evaluation is kept (``GAResult.all_evaluations``) so the
number of trials is known for the deflated Sharpe ratio (Bailey & Lopez de Prado 2014).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quant_lib._lazy import LazyModule

algorithms = LazyModule("deap.algorithms")
base = LazyModule("deap.base")
creator = LazyModule("deap.creator")
tools = LazyModule("deap.tools")

ParamRanges = Mapping[str, tuple[float, float, type | str]]
FitnessFn = Callable[[dict[str, Any]], Any]
MapFn = Callable[[FitnessFn, list[dict[str, Any]]], Sequence[Any]]

_FITNESS_CLASS = {True: "QuantLibFitnessMax", False: "QuantLibFitnessMin"}
_INDIVIDUAL_CLASS = {True: "QuantLibIndividualMax", False: "QuantLibIndividualMin"}


def _ensure_creator_classes(maximize: bool) -> tuple[type, type]:
    """Create the DEAP fitness/individual classes once per process.

    ``creator.create`` overwrites (with a RuntimeWarning) a class created twice; guarding on
    ``hasattr`` keeps one class object, so individuals stay picklable across optimizer instances.
    """
    fitness_name = _FITNESS_CLASS[maximize]
    individual_name = _INDIVIDUAL_CLASS[maximize]
    if not hasattr(creator, fitness_name):
        creator.create(fitness_name, base.Fitness, weights=(1.0 if maximize else -1.0,))
    if not hasattr(creator, individual_name):
        creator.create(individual_name, list, fitness=getattr(creator, fitness_name))
    return getattr(creator, fitness_name), getattr(creator, individual_name)


def builtin_map(fitness_fn: FitnessFn, params_list: list[dict[str, Any]]) -> list[Any]:
    """Serial evaluation: ``[fitness_fn(p) for p in params_list]``."""
    return [fitness_fn(params) for params in params_list]


@dataclass(frozen=True)
class ParameterSpec:
    """One search dimension: ``kind`` is ``int`` or ``float``; bounds are inclusive."""

    name: str
    low: float
    high: float
    kind: type

    @property
    def gene_low(self) -> float:
        return self.low - 0.5 if self.kind is int else self.low

    @property
    def gene_high(self) -> float:
        return self.high + 0.5 if self.kind is int else self.high

    def decode(self, gene: float) -> int | float:
        if self.kind is int:
            return int(min(max(round(gene), self.low), self.high))
        return float(min(max(gene, self.low), self.high))


def parse_param_ranges(param_ranges: ParamRanges) -> list[ParameterSpec]:
    """Validate ``{name: (low, high, int|float)}`` into specs (order preserved)."""
    if not param_ranges:
        raise ValueError("param_ranges is empty: give at least one {name: (low, high, int|float)}")
    kinds = {int: int, float: float, "int": int, "float": float}
    specs = []
    for name, spec in param_ranges.items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 3:
            raise ValueError(f"param_ranges[{name!r}] must be (low, high, int|float), got {spec!r}")
        low, high, kind = spec
        if kind not in kinds:
            raise ValueError(f"param_ranges[{name!r}] type must be int or float, got {kind!r}")
        kind = kinds[kind]
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"param_ranges[{name!r}] needs finite low <= high, got ({low}, {high})")
        if kind is int and (low != int(low) or high != int(high)):
            raise ValueError(f"param_ranges[{name!r}] is int but bounds ({low}, {high}) are not integers")
        specs.append(ParameterSpec(str(name), float(low), float(high), kind))
    return specs


@dataclass
class GAResult:
    """Outcome of a GA run.

    ``history``: one row per generation (generation, n_evaluated, mean, std, min, max, best_so_far).
    ``all_evaluations``: one row per DISTINCT parameter set evaluated (params..., fitness,
    generation); its height equals ``n_evaluations`` = the trial count for the deflated Sharpe.
    ``hall_of_fame``: the best distinct parameter sets, best first.
    """

    best_params: dict[str, Any]
    best_fitness: float
    history: pl.DataFrame
    n_evaluations: int
    all_evaluations: pl.DataFrame
    hall_of_fame: list[dict[str, Any]] = field(default_factory=list)


def _finite_values(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _stat(reducer: Callable[[np.ndarray], float]) -> Callable[[Sequence[float]], float]:
    def reduce_finite(values: Sequence[float]) -> float:
        finite = _finite_values(values)
        return float(reducer(finite)) if finite.size else float("nan")

    return reduce_finite


class GeneticOptimizer:
    """DEAP GA over mixed integer/float parameters, maximizing (default) or minimizing a fitness.

    ``fitness_fn(params: dict) -> float`` (a 1-tuple is accepted too, DEAP style). ``map_fn``
    evaluates a batch: ``map_fn(fitness_fn, [params, ...]) -> [fitness, ...]`` in order; pass
    ``ComputeBackend.map`` to parallelise (the fitness then has to be picklable). Non-finite
    fitness values count as the worst possible score.

    DEAP's operators draw from the global ``random`` module, so ``run`` seeds it (and numpy's
    global RNG) with ``seed`` for the duration of the run and restores both states afterwards:
    the same seed gives the same best parameters, fitness and evaluation log.
    """

    def __init__(
        self,
        fitness_fn: FitnessFn,
        param_ranges: ParamRanges,
        population_size: int = 50,
        n_generations: int = 10,
        cxpb: float = 0.5,
        mutpb: float = 0.2,
        seed: int = 0,
        map_fn: MapFn | None = None,
        maximize: bool = True,
        tournament_size: int = 3,
        n_elite: int = 1,
        hall_of_fame_size: int = 5,
        crossover_eta: float = 15.0,
        mutation_eta: float = 20.0,
    ) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        if n_generations < 0:
            raise ValueError(f"n_generations must be >= 0, got {n_generations}")
        for label, probability in (("cxpb", cxpb), ("mutpb", mutpb)):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {probability}")
        if not 0 <= n_elite < population_size:
            raise ValueError(f"n_elite must be in [0, population_size), got {n_elite}")
        if tournament_size < 1 or hall_of_fame_size < 1:
            raise ValueError("tournament_size and hall_of_fame_size must be >= 1")
        self.fitness_fn = fitness_fn
        self.specs = parse_param_ranges(param_ranges)
        self.param_names = [spec.name for spec in self.specs]
        self.population_size = population_size
        self.n_generations = n_generations
        self.cxpb = cxpb
        self.mutpb = mutpb
        self.seed = seed
        self.map_fn: MapFn = map_fn or builtin_map
        self.maximize = maximize
        self.tournament_size = tournament_size
        self.n_elite = n_elite
        self.hall_of_fame_size = hall_of_fame_size
        self._worst = float("-inf") if maximize else float("inf")
        self._fitness_class, self._individual_class = _ensure_creator_classes(maximize)
        self.toolbox = self._build_toolbox(crossover_eta, mutation_eta)

    def _build_toolbox(self, crossover_eta: float, mutation_eta: float) -> base.Toolbox:
        lows = [spec.gene_low for spec in self.specs]
        highs = [spec.gene_high for spec in self.specs]
        toolbox = base.Toolbox()
        toolbox.register(
            "individual",
            lambda: self._individual_class(random.uniform(lo, hi) for lo, hi in zip(lows, highs)),
        )
        toolbox.register("population", tools.initRepeat, list, toolbox.individual)
        toolbox.register("mate", tools.cxSimulatedBinaryBounded, eta=crossover_eta, low=lows, up=highs)
        toolbox.register(
            "mutate",
            tools.mutPolynomialBounded,
            eta=mutation_eta,
            low=lows,
            up=highs,
            indpb=1.0 / len(self.specs),
        )
        toolbox.register("select", tools.selTournament, tournsize=self.tournament_size)
        return toolbox

    def decode(self, individual: Sequence[float]) -> dict[str, Any]:
        """Genes -> parameter dict (ints rounded and clipped to their bounds)."""
        return {spec.name: spec.decode(gene) for spec, gene in zip(self.specs, individual)}

    def _coerce_fitness(self, value: Any, params: dict[str, Any]) -> float:
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise ValueError(f"fitness for {params} must be a float or a 1-tuple, got {value!r}")
            value = value[0]
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fitness for {params} is not a number: {value!r}") from exc

    def _evaluate_batch(
        self,
        individuals: list[Any],
        cache: dict[tuple, float],
        log_rows: list[dict[str, Any]],
        generation: int,
    ) -> int:
        """Evaluate the individuals not in the cache in one ``map_fn`` call; return how many."""
        keys = [tuple(self.decode(ind).values()) for ind in individuals]
        pending: dict[tuple, dict[str, Any]] = {}
        for key in keys:
            if key not in cache and key not in pending:
                pending[key] = dict(zip(self.param_names, key))
        if pending:
            params_list = list(pending.values())
            values = list(self.map_fn(self.fitness_fn, params_list))
            if len(values) != len(params_list):
                raise ValueError(
                    f"map_fn returned {len(values)} fitness values for {len(params_list)} parameter sets"
                )
            for key, params, value in zip(pending, params_list, values):
                fitness = self._coerce_fitness(value, params)
                cache[key] = fitness
                log_rows.append({**params, "fitness": fitness, "generation": generation})
        for individual, key in zip(individuals, keys):
            fitness = cache[key]
            individual.fitness.values = (fitness if math.isfinite(fitness) else self._worst,)
        return len(pending)

    def _statistics(self) -> tools.Statistics:
        stats = tools.Statistics(key=lambda ind: ind.fitness.values[0])
        stats.register("mean", _stat(np.mean))
        stats.register("std", _stat(np.std))
        stats.register("min", _stat(np.min))
        stats.register("max", _stat(np.max))
        return stats

    def run(self) -> GAResult:
        """Run ``n_generations`` of select / vary / evaluate; return the best and the full log."""
        random_state = random.getstate()
        numpy_state = np.random.get_state()
        random.seed(self.seed)
        np.random.seed(self.seed % (2**32))
        try:
            return self._run()
        finally:
            random.setstate(random_state)
            np.random.set_state(numpy_state)

    def _run(self) -> GAResult:
        cache: dict[tuple, float] = {}
        log_rows: list[dict[str, Any]] = []
        hall_of_fame = tools.HallOfFame(self.hall_of_fame_size, similar=lambda a, b: self.decode(a) == self.decode(b))
        stats = self._statistics()
        logbook = tools.Logbook()
        logbook.header = ["generation", "n_evaluated", *stats.fields, "best_so_far"]

        population = self.toolbox.population(n=self.population_size)
        n_evaluated = self._evaluate_batch(population, cache, log_rows, generation=0)
        hall_of_fame.update(population)
        logbook.record(
            generation=0, n_evaluated=n_evaluated, best_so_far=hall_of_fame[0].fitness.values[0],
            **stats.compile(population),
        )

        for generation in range(1, self.n_generations + 1):
            elite = [self.toolbox.clone(ind) for ind in tools.selBest(population, self.n_elite)]
            offspring = self.toolbox.select(population, len(population) - self.n_elite)
            offspring = algorithms.varAnd(offspring, self.toolbox, self.cxpb, self.mutpb)
            invalid = [ind for ind in offspring if not ind.fitness.valid]
            n_evaluated = self._evaluate_batch(invalid, cache, log_rows, generation=generation)
            hall_of_fame.update(offspring)
            population[:] = elite + offspring
            logbook.record(
                generation=generation, n_evaluated=n_evaluated,
                best_so_far=hall_of_fame[0].fitness.values[0], **stats.compile(population),
            )

        best = hall_of_fame[0]
        best_params = self.decode(best)
        history = pl.DataFrame(
            {name: logbook.select(name) for name in logbook.header},
            schema={
                "generation": pl.Int64, "n_evaluated": pl.Int64, "mean": pl.Float64, "std": pl.Float64,
                "min": pl.Float64, "max": pl.Float64, "best_so_far": pl.Float64,
            },
        )
        param_schema = {spec.name: pl.Int64 if spec.kind is int else pl.Float64 for spec in self.specs}
        all_evaluations = pl.DataFrame(
            log_rows, schema={**param_schema, "fitness": pl.Float64, "generation": pl.Int64}
        )
        return GAResult(
            best_params=best_params,
            best_fitness=cache[tuple(best_params.values())],
            history=history,
            n_evaluations=len(cache),
            all_evaluations=all_evaluations,
            hall_of_fame=[self.decode(ind) for ind in hall_of_fame],
        )

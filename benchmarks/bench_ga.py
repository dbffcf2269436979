"""Genetic optimizer: serial evaluation vs the Ray backend with 2 workers (and local processes).

Workload: ``GeneticOptimizer`` (population 40, seeded) over the top-N momentum strategy's
lookback, top_n, vol_target and fractional_kelly; every fitness evaluation is a full vectorized
backtest (``run_vectorized_backtest``, costs on) of a synthetic 200-ticker x 2,520-day panel
scored by its Sharpe ratio. The generations are chosen so the run makes about 200 distinct
evaluations; the same seed gives the same evaluations in every mode (checked below).

Timed section: ``GeneticOptimizer.run()`` only, best of ``REPEATS`` runs per mode, the modes
interleaved so a burst of load from other processes does not hit one mode only. Not timed but
reported: starting Ray and warming its workers (imports, numba cache load, fitness data
deserialised), and the same warm-up of the process pool.

Target: Ray (2 workers) >= 1.7x faster than serial.

Run: ``.venv/bin/python benchmarks/bench_ga.py``
"""

from __future__ import annotations

import datetime as dt
import os
import time

import numpy as np
import polars as pl

from quant_lib.research import GeneticOptimizer, builtin_map
from quant_lib.research.fitness import StrategyFitnessConfig, make_strategy_fitness

N_TICKERS, N_DAYS, SEED = 200, 2_520, 11
POPULATION, GENERATIONS, GA_SEED = 40, 12, 3
PARAM_RANGES = {
    "lookback": (20, 252, int),
    "top_n": (5, 50, int),
    "vol_target": (0.05, 0.30, float),
    "fractional_kelly": (0.2, 1.0, float),
}
WARM_UP_PARAMS = {"lookback": 126, "top_n": 20, "vol_target": 0.15, "fractional_kelly": 0.5}
TARGET_SPEEDUP = 1.7
REPEATS = 2


def make_prices() -> pl.DataFrame:
    """Seeded panel: per-ticker persistent drifts (so momentum matters), t(5) shocks, and 'SPY'."""
    rng = np.random.default_rng(SEED)
    days = pl.date_range(dt.date(2012, 1, 2), dt.date(2023, 12, 31), "1d", eager=True)
    days = days.filter(days.dt.weekday() <= 5)[:N_DAYS]
    drift = rng.normal(0.0, 0.0004, N_TICKERS)
    shocks = rng.standard_t(5, (N_DAYS, N_TICKERS)) * 0.012 / np.sqrt(5.0 / 3.0)
    market = rng.normal(0.0003, 0.009, N_DAYS)
    returns = drift + market[:, None] + shocks
    closes = 50.0 * np.exp(np.cumsum(np.column_stack([returns, market]), axis=0))
    tickers = [f"T{i:03d}" for i in range(N_TICKERS)] + ["SPY"]
    return pl.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), N_TICKERS + 1),
            "ticker": tickers * N_DAYS,
            "adj_close": closes.ravel(),
            "volume": rng.uniform(5e5, 5e6, (N_DAYS, N_TICKERS + 1)).ravel(),
        }
    )


def run_ga(fitness, map_fn):
    optimizer = GeneticOptimizer(
        fitness, PARAM_RANGES, population_size=POPULATION, n_generations=GENERATIONS, seed=GA_SEED, map_fn=map_fn
    )
    start = time.perf_counter()
    result = optimizer.run()
    return time.perf_counter() - start, result


def main() -> None:
    # Imported here: spawned worker processes re-import this script and need no dagster.
    from quant_resources.compute import ProcessPoolBackend, RayBackend

    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    prices = make_prices()
    start_date = prices["date"].unique().sort()[260]
    fitness = make_strategy_fitness(prices, config=StrategyFitnessConfig(objective="sharpe", start_date=start_date))
    print(f"panel: {N_TICKERS} tickers x {N_DAYS} days ({prices.height:,} rows); GA population {POPULATION}, "
          f"{GENERATIONS} generations, seed {GA_SEED}; {os.cpu_count()} CPUs")

    fitness(WARM_UP_PARAMS)
    single = []
    for _ in range(3):
        start = time.perf_counter()
        fitness(WARM_UP_PARAMS)
        single.append(time.perf_counter() - start)
    print(f"one fitness evaluation (warm, best of 3): {min(single) * 1e3:.0f} ms")

    local = ProcessPoolBackend(max_workers=2)
    start = time.perf_counter()
    local.map(fitness, [WARM_UP_PARAMS] * 4)
    local_startup = time.perf_counter() - start

    ray_backend = RayBackend(max_workers=2)
    start = time.perf_counter()
    ray_backend.start()
    ray_init = time.perf_counter() - start
    ray_backend.map(fitness, [WARM_UP_PARAMS] * 4)
    ray_startup = time.perf_counter() - start

    modes = {
        "serial (in-process)": (builtin_map, 0.0),
        "ray (2 workers)": (ray_backend.map, ray_startup),
        "local processes (2)": (local.map, local_startup),
    }
    best: dict[str, tuple[float, object]] = {}
    for _ in range(REPEATS):
        for name, (map_fn, _startup) in modes.items():
            seconds, result = run_ga(fitness, map_fn)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, result)
    local.close()
    ray_backend.close()
    rows = [(name, *best[name], modes[name][1]) for name in modes]
    serial_seconds, serial = best["serial (in-process)"]
    ray_seconds = best["ray (2 workers)"][0]

    print()
    print(f"best of {REPEATS} interleaved runs per mode (other processes share this host's CPUs)")
    print(f"{'mode':<22}{'GA seconds':>12}{'evaluations':>13}{'ms / eval':>11}{'speed-up':>10}{'startup s':>11}")
    for name, seconds, result, startup in rows:
        print(
            f"{name:<22}{seconds:>12.2f}{result.n_evaluations:>13d}{seconds / result.n_evaluations * 1e3:>11.0f}"
            f"{serial_seconds / seconds:>9.2f}x{startup:>11.2f}"
        )
    print(f"(ray startup = ray.init {ray_init:.2f} s + warming both workers; not in the timed section)")
    print()
    identical = all(r.all_evaluations.equals(serial.all_evaluations) for _, _, r, _ in rows)
    print(f"best params {serial.best_params}, Sharpe {serial.best_fitness:.3f}")
    print(f"same evaluations and best in every mode: {identical}")
    speedup = serial_seconds / ray_seconds
    verdict = "MET" if speedup >= TARGET_SPEEDUP else "NOT MET"
    print(f"target ray(2 workers) >= {TARGET_SPEEDUP}x serial: {speedup:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()

"""Benchmark: HRP and the compiled Kelly QP on 252 x 500 returns, against peers in the same run.

    python benchmarks/bench_portfolio.py [--quick]

HRP: `quant_lib.portfolio.hrp_weights` vs PyPortfolioOpt `HRPOpt` and skfolio `HierarchicalRiskParity`
(single linkage, no optimal leaf ordering, sample covariance). Target: >= 20x faster than both, weights
equal to PyPortfolioOpt's (max abs difference printed).
Kelly: `KellyOptimizer` compiled once and re-solved with new expected returns, vs a naive cvxpy problem
rebuilt on every call (same objective, constraints, solver and tolerances), for the exact covariance
and for a 20-factor statistical risk model. Target: re-solve < 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_lib.portfolio import (  # noqa: E402
    KellyOptimizer,
    hrp_weights,
    ledoit_wolf_covariance,
    statistical_factor_model,
)
from quant_lib.portfolio.kelly import _TIGHT_TOLERANCES  # noqa: E402

N_OBS, N_ASSETS, N_FACTORS, SEED = 252, 500, 20, 42


def factor_returns(n_obs: int, n_assets: int, seed: int) -> np.ndarray:
    """Five-factor returns with asset-specific noise (fixed seed)."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0003, 0.01, (n_obs, 5))
    loadings = rng.normal(0.8, 0.5, (n_assets, 5)) / np.sqrt(5)
    noise = rng.normal(0.0, 0.015, (n_obs, n_assets)) * rng.uniform(0.5, 2.0, n_assets)
    return factors @ loadings.T + noise


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time over `repeats` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_hrp(returns: np.ndarray, repeats: int, peer_repeats: int) -> list[tuple]:
    from pypfopt import HRPOpt
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    columns = [f"asset_{i:03d}" for i in range(returns.shape[1])]
    frame = pd.DataFrame(returns, columns=columns)
    hrp_weights(returns)  # warm the imports

    def pypfopt_hrp() -> np.ndarray:
        weights = HRPOpt(frame).optimize("single")
        return np.array([weights[c] for c in columns])

    def skfolio_hrp() -> np.ndarray:
        model = HierarchicalRiskParity(
            seriation_estimator=HierarchicalSeriation(
                hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
                optimal_ordering=False,
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # T < N: skfolio warns and clips the covariance to PD
            return model.fit(returns).weights_

    ours_s, ours_w = timed(lambda: hrp_weights(returns), repeats)
    pypfopt_s, pypfopt_w = timed(pypfopt_hrp, peer_repeats)
    skfolio_s, skfolio_w = timed(skfolio_hrp, peer_repeats)
    diff_pypfopt = float(np.abs(ours_w - pypfopt_w).max())
    diff_skfolio = float(np.abs(ours_w - skfolio_w).max())
    return [
        ("HRP vs PyPortfolioOpt HRPOpt", ours_s, pypfopt_s, diff_pypfopt),
        ("HRP vs skfolio HierarchicalRiskParity", ours_s, skfolio_s, diff_skfolio),
    ]


def naive_kelly(mu: np.ndarray, risk: tuple[np.ndarray, ...], solver: str) -> np.ndarray:
    """The same Kelly problem built from constants on every call (no parameters, no caching)."""
    w = cp.Variable(mu.shape[0])
    if len(risk) == 1:
        variance = cp.quad_form(w, risk[0], assume_PSD=True)
    else:
        loadings, specific = risk
        variance = cp.sum_squares(loadings.T @ w) + cp.sum_squares(cp.multiply(np.sqrt(specific), w))
    problem = cp.Problem(cp.Maximize(mu @ w - 0.5 * variance), [w >= 0, cp.sum(w) <= 1.0])
    problem.solve(solver=solver, **_TIGHT_TOLERANCES.get(solver, {}))
    return 0.5 * np.clip(w.value, 0.0, None)


def bench_kelly(returns: np.ndarray, resolves: int, naive_repeats: int) -> list[tuple]:
    cov, _ = ledoit_wolf_covariance(returns)
    base_mu = returns.mean(axis=0)
    rng = np.random.default_rng(SEED + 1)
    mus = [base_mu + rng.normal(0.0, 2e-4, base_mu.shape[0]) for _ in range(max(resolves, naive_repeats) + 1)]
    loadings, specific = statistical_factor_model(cov, N_FACTORS)
    rows = []
    for label, n_factors, risk, solve_kwargs in (
        ("Kelly QP, exact covariance", None, (cov,), {"cov": cov}),
        (f"Kelly QP, {N_FACTORS}-factor model", N_FACTORS, (loadings, specific),
         {"factor_loadings": loadings, "specific_var": specific}),
    ):
        optimizer = KellyOptimizer(N_ASSETS, max_leverage=1.0, long_only=True, fraction=0.5, n_factors=n_factors)
        start = time.perf_counter()
        optimizer.solve(mus[0], **solve_kwargs)
        first_s = time.perf_counter() - start
        calls = iter(mus[1:])
        resolve_s, ours_w = timed(lambda: optimizer.solve(next(calls), **solve_kwargs), resolves)
        last_mu = mus[resolves]
        naive_s, _ = timed(lambda: naive_kelly(last_mu, risk, optimizer.solver), naive_repeats)
        naive_w = naive_kelly(last_mu, risk, optimizer.solver)
        rows.append((f"{label} (re-solve; first solve {first_s:.3f}s)", resolve_s, naive_s,
                     float(np.abs(ours_w - naive_w).max())))
        if n_factors is not None:
            calls = iter(mus[1:])
            with_eig_s, _ = timed(lambda: optimizer.solve(next(calls), cov=cov), resolves)
            rows.append((f"{label} from the covariance (top-{N_FACTORS} eigh + re-solve)", with_eig_s, naive_s, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats, peer_repeats = (5, 1) if args.quick else (21, 3)
    returns = factor_returns(N_OBS, N_ASSETS, SEED)
    print(f"returns {N_OBS} x {N_ASSETS} (seed {SEED}); cpus {os.cpu_count()}; load {os.getloadavg()[0]:.1f}; "
          f"solver {KellyOptimizer(2).solver}")
    hrp_rows = bench_hrp(returns, repeats, peer_repeats)
    kelly_rows = bench_kelly(returns, resolves=7 if args.quick else 11, naive_repeats=peer_repeats)

    print(f"\n{'case':<72} {'ours s':>9} {'peer s':>9} {'ratio':>8} {'max|dw|':>10}")
    for name, ours, peer, diff in hrp_rows + kelly_rows:
        diff_text = "" if diff is None else f"{diff:.1e}"
        print(f"{name:<72} {ours:>9.4f} {peer:>9.4f} {peer / ours:>7.1f}x {diff_text:>10}")

    print("\ntargets")
    hrp_ok = all(peer / ours >= 20 for _, ours, peer, _ in hrp_rows)
    print(f"  HRP >= 20x faster than PyPortfolioOpt and skfolio: {'MET' if hrp_ok else 'NOT MET'} "
          f"({', '.join(f'{peer / ours:.0f}x' for _, ours, peer, _ in hrp_rows)})")
    match = hrp_rows[0][3]
    print(f"  HRP weights equal PyPortfolioOpt's (max abs diff {match:.1e} <= 1e-10): "
          f"{'MET' if match <= 1e-10 else 'NOT MET'}")
    for name, ours, _, _ in kelly_rows:
        print(f"  {name.split(' (')[0]}{' (from covariance)' if 'eigh' in name else ''} re-solve < 150 ms: "
              f"{'MET' if ours < 0.150 else 'NOT MET'} ({ours * 1000:.0f} ms)")


if __name__ == "__main__":
    main()

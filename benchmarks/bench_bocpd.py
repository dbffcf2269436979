"""Benchmark: BOCPD microseconds per observation at max_run_len = 500.

Ours (`quant_lib.regime.bocpd`, compiled recursion, one exp per run length) streaming through
`BayesianChangePointDetector.update` and offline through `detect_change_points`, against a plain
numpy implementation of the same recursion (vectorized over run lengths, one observation per
call), in the same run on the same series. Target: < 20 us per observation.
Run: `python benchmarks/bench_bocpd.py [--n 20000]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import gammaln, logsumexp

from quant_lib.regime.bocpd import BayesianChangePointDetector, detect_change_points


class NumpyBOCPD:
    """Adams & MacKay with a NIG prior, plain numpy over the run-length axis."""

    def __init__(self, mu0: float, var0: float, hazard: float = 1 / 500, max_run_len: int = 500) -> None:
        self.h, self.cap = hazard, max_run_len + 1
        self.prior = (mu0, 1.0, 2.0, var0)
        self.log_r = np.zeros(1)
        self.mu, self.kappa, self.alpha, self.beta = (np.array([v]) for v in self.prior)

    def update(self, x: float) -> float:
        s2 = self.beta * (self.kappa + 1) / (self.alpha * self.kappa)
        nu = 2 * self.alpha
        lp = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * s2) - (nu + 1) / 2 * np.log1p((x - self.mu) ** 2 / (nu * s2))
        joint = self.log_r + lp
        grow = joint + np.log1p(-self.h)
        cp = logsumexp(joint) + np.log(self.h)
        log_r = np.r_[cp, grow][: self.cap]
        self.log_r = log_r - logsumexp(log_r)
        d = x - self.mu
        mu, kappa, alpha, beta = self.prior
        self.beta = np.r_[beta, self.beta + self.kappa * d * d / (2 * (self.kappa + 1))][: self.cap]
        self.mu = np.r_[mu, (self.kappa * self.mu + x) / (self.kappa + 1)][: self.cap]
        self.kappa = np.r_[kappa, self.kappa + 1][: self.cap]
        self.alpha = np.r_[alpha, self.alpha + 0.5][: self.cap]
        return float(np.exp(self.log_r[:6]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 0.01, args.n // 2), rng.normal(0, 0.02, args.n - args.n // 2)]
    detect_change_points(x[:100])  # compile / load the cache outside the timing
    detector = BayesianChangePointDetector(max_run_len=500)
    for v in x[:1000]:
        detector.update(v)
    t = time.perf_counter()
    for v in x[1000:]:
        detector.update(v)
    stream = (time.perf_counter() - t) / (args.n - 1000) * 1e6
    t = time.perf_counter()
    detect_change_points(x, max_run_len=500)
    offline = (time.perf_counter() - t) / args.n * 1e6
    base = NumpyBOCPD(float(x[:20].mean()), float(x[:20].var()))
    m = min(args.n, 5000)
    for v in x[:600]:
        base.update(v)
    t = time.perf_counter()
    for v in x[600:m]:
        base.update(v)
    numpy_us = (time.perf_counter() - t) / (m - 600) * 1e6
    print(f"max_run_len=500, {args.n:,} observations")
    print(f"ours streaming update : {stream:7.2f} us/obs  (target < 20: {'met' if stream < 20 else 'NOT met'})")
    print(f"ours offline (panel)  : {offline:7.2f} us/obs")
    print(f"plain numpy update    : {numpy_us:7.2f} us/obs  -> ours is {numpy_us / stream:.1f}x faster")


if __name__ == "__main__":
    main()

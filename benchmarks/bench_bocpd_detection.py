"""Benchmark: does BOCPD find the simulator's planted idiosyncratic volatility breaks?

For each input variant, on the same simulated panels (issue 6's market; several seeds), the
offline detector (`detect_change_points`, defaults) is run per ticker and scored against
`truth.change_points` (one vol break per planted ticker, vol x f or / f with f ~ U(2, 3)):
- detection rate within 5 / 10 / 20 bars of the break (first bar at the new level = delay 0),
  cp_score > 0.5, up- and down-breaks apart; median delay of those found within 60 bars;
- false alarms: share of quiet bars (no planted vol break in the 5 bars before / 80 after, after
  the first 80 bars) with cp_score > 0.5, and alarm onsets (score crossing 0.5) per 1,000 quiet bars;
- a null panel (no vol, drift or market breaks planted): the same two false-alarm figures.
Variants: raw returns, `idiosyncratic_shocks` (market-only residual; the old input, the
baseline), `factor_shocks` with and without sectors (and with the detector's Student-t(5)
observation model, `nu=5`, at hazard 1/100 instead of the Gaussian one at 1/500), and an oracle: the simulator's true
idiosyncratic returns (rebuilt from its stages; no factor left, earnings jumps included) under the
same standardization, the ceiling of any factor model for this detector. A first block checks the detector alone
on clean single series (Gaussian / Student-t(5), vol x2.5 at bar 500).
Run: `python benchmarks/bench_bocpd_detection.py [--seeds 5 6 7 8] [--tickers 50] [--years 8]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl

from quant_lib.data import simulate as sim_stages
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.regime.bocpd import detect_change_points
from quant_lib.regime.bocpd_eval import BreakDetection, alarm_rates, detect_breaks, return_panel
from quant_lib.regime.bocpd_input import factor_shocks, idiosyncratic_shocks

WITHIN = (5, 10, 20)


def panel(config: SimulationConfig) -> tuple[np.ndarray, list, list[str], list[str], pl.DataFrame]:
    """Daily log returns [T, N] of the constituents (NaN where not listed), dates, tickers, sectors, breaks."""
    sim = simulate_market(config)
    return (*return_panel(sim.prices, sim.universe, config.benchmark_ticker), sim.truth.change_points)


def true_idiosyncratic_returns(config: SimulationConfig, names: list[str], n_rows: int) -> np.ndarray:
    """idio_vol x idio_shock + earnings jump of each ticker, replayed through the simulator's own
    stages and streams (`_simulate_full`'s order), columns as in `names`, NaN where not listed."""
    rng = sim_stages._streams(config.seed)
    path = sim_stages._calendar_and_regime(config, rng)
    tk = sim_stages._draw_tickers(config, rng, path.sector_words, path.profile)
    sim_stages._listings(config, rng, tk, path.n_days)
    sim_stages._vol_change_points(config, rng, tk, path.n_days)
    idio_vol = sim_stages._idiosyncratic_vol(config, rng, tk, path)
    shock = sim_stages._standard_t(rng["idio_shock"], config.student_t_df, idio_vol.shape)
    latents = sim_stages._latent_characteristics(config, rng, tk, shock.copy())
    sim_stages._planted_structures(config, rng, tk, path.n_days)
    sim_stages._news_sentiment(rng, latents)
    earnings = sim_stages._earnings_events(config, rng, tk, path, idio_vol)
    idio = idio_vol * shock
    idio[earnings.rep_rows, earnings.q_cols] += earnings.jump
    column = {s: k for k, s in enumerate(tk.symbols)}
    order = [column[n] for n in names]
    return np.where(tk.listed[:, order], idio[:, order], np.nan)[:n_rows]


def oracle_shocks(idio: np.ndarray) -> np.ndarray:
    """The true idiosyncratic returns, standardized per column as `factor_shocks` does a single series."""
    return np.column_stack([factor_shocks(idio[:, [j]]) for j in range(idio.shape[1])])


def summary(results: list[tuple[BreakDetection, np.ndarray]]) -> str:
    parts = []
    for side, label in ((True, "up"), (False, "down")):
        d = np.concatenate([r.delay[r.up == side] for r, _ in results])
        found = " ".join(f"{np.mean(d <= w) * 100:3.0f}%" for w in WITHIN)
        median = np.median(d[np.isfinite(d)]) if np.isfinite(d).any() else np.nan
        parts.append(f"{label:>4} n={d.size:3d} {found} med {median:4.1f}")
    return " | ".join(parts) + " | FA " + pooled_rates([(r.quiet, score) for r, score in results])


def pooled_rates(pairs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Share of quiet bars > 0.5 and onsets per 1,000 quiet bars, pooled over panels."""
    bars = sum(int(q.sum()) for q, _ in pairs)
    rates = [alarm_rates(score, q) for q, score in pairs]
    share = sum(r[0] * q.sum() for r, (q, _) in zip(rates, pairs)) / bars
    onsets = sum(r[1] * q.sum() for r, (q, _) in zip(rates, pairs)) / bars
    return f"{share * 100:4.1f}% {onsets:4.1f}/1k"


def clean_series_check(rng: np.random.Generator, n: int = 200) -> None:
    """The detector alone: vol x2.5 at bar 500 of 1,000, n series each, Gaussian and Student-t(5)
    observation models (``nu``)."""
    for label, draw in (("gaussian", lambda s: rng.standard_normal(s)),
                        ("student-t(5)", lambda s: rng.standard_t(5, s) / np.sqrt(5 / 3))):
        x = draw((1000, n))
        x[500:] *= 2.5
        for model, kwargs in (("gaussian model", {}), ("t(5) model", {"nu": 5.0})):
            score = detect_change_points(x, **kwargs)[0]
            hits = [np.flatnonzero(score[500:560, j] > 0.5) for j in range(n)]
            d = np.array([h[0] if h.size else np.inf for h in hits])
            quiet = np.zeros_like(score, bool)
            quiet[80:495] = True
            print(f"  {label:12s} noise, {model:14s}: found " + " ".join(f"{np.mean(d <= w) * 100:3.0f}%" for w in WITHIN)
                  + f" med {np.median(d[np.isfinite(d)]):4.1f} | FA {pooled_rates([(quiet, score)])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7, 8])
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--years", type=int, default=8)
    args = parser.parse_args()
    clean_series_check(np.random.default_rng(0))
    variants: dict[str, Callable] = {
        "raw returns": lambda r, s: r,
        "idiosyncratic_shocks (old)": lambda r, s: idiosyncratic_shocks(r),
        "factor_shocks, market only": lambda r, s: factor_shocks(r),
        "factor_shocks, + sectors": lambda r, s: factor_shocks(r, s),
        "  same, no common-vol step": lambda r, s: factor_shocks(r, s, common_half_life=None),
        "  same, Student-t(5) h=1/100": lambda r, s: factor_shocks(r, s),
        "oracle: true idiosyncratic": None,
    }
    detector = {"  same, Student-t(5) h=1/100": {"nu": 5.0, "hazard": 0.01}}
    results: dict[str, list] = {k: [] for k in variants}
    null: dict[str, list] = {k: [] for k in variants}
    seconds = dict.fromkeys(variants, 0.0)
    for seed in args.seeds:
        config = SimulationConfig(n_tickers=args.tickers, seed=seed, horizon_end=date(2005 + args.years - 1, 12, 31),
                                  change_point_fraction=0.5)
        quiet_config = replace(config, change_point_fraction=0.0, drift_change_fraction=0.0, market_breaks=())
        returns, dates, names, sectors, breaks = panel(config)
        null_returns, _, null_names, null_sectors, _ = panel(quiet_config)
        idio = true_idiosyncratic_returns(config, names, len(dates))
        null_idio = true_idiosyncratic_returns(quiet_config, null_names, len(null_returns))
        variants["oracle: true idiosyncratic"] = lambda r, s: oracle_shocks(idio if r is returns else null_idio)
        for label, make in variants.items():
            t = time.perf_counter()
            x = make(returns, sectors)
            seconds[label] += time.perf_counter() - t
            score = detect_change_points(x, **detector.get(label, {}))[0]
            results[label].append((detect_breaks(score, dates, names, breaks), score))
            null_score = detect_change_points(make(null_returns, null_sectors), **detector.get(label, {}))[0]
            quiet = np.isfinite(null_score)
            quiet[:80] = False
            null[label].append((quiet, null_score))
    print(f"simulated panels: seeds {args.seeds}, {args.tickers} tickers, {args.years} years, half of them with a vol break")
    print(f"{'input':28s} break  found within {'/'.join(map(str, WITHIN))} bars, median delay | false alarms (bars > 0.5, onsets)")
    for label in variants:
        print(f"{label:28s} {summary(results[label])} | null panel FA {pooled_rates(null[label])} | input {seconds[label]:.2f} s")


if __name__ == "__main__":
    main()

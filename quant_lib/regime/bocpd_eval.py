"""Scoring BOCPD against planted change points (the simulator's ``truth.change_points``).

Used by ``benchmarks/bench_bocpd_detection.py`` and the simulator tests: a return panel from a
long price frame, then for each planted vol break the delay until ``cp_score > threshold``
(first bar at the new level = delay 0; inf when not within ``horizon`` bars) and the bars that
count as quiet for the false-alarm rate (after the first ``quiet_after`` bars, and not within 5
bars before / ``quiet_after`` bars after a planted break).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def return_panel(prices: pl.DataFrame, universe: pl.DataFrame, exclude: str) -> tuple[np.ndarray, list, list[str], list[str]]:
    """Daily log returns of ``adj_close`` [T, N] (NaN where a ticker has no bar; ``exclude``, e.g.
    the benchmark, left out), dates, tickers (sorted) and each ticker's sector from ``universe``."""
    frame = prices.filter(pl.col("ticker") != exclude)
    wide = frame.pivot(on="ticker", index="date", values="adj_close", sort_columns=True).sort("date")
    names = [c for c in wide.columns if c != "date"]
    returns = np.diff(np.log(wide.select(names).to_numpy().astype(np.float64)), axis=0, prepend=np.nan)
    sector_of = dict(universe.select("ticker", "sector").unique("ticker").iter_rows())
    return returns, wide["date"].to_list(), names, [sector_of.get(n, "Unknown") for n in names]


@dataclass(frozen=True)
class BreakDetection:
    """Per planted break: ``up`` (vol rose), ``delay`` (bars; inf if not found), ``ratio`` (std of z
    over the 20 bars after / the 100 before, when z was given); ``quiet`` [T, N] bar mask."""

    up: np.ndarray
    delay: np.ndarray
    ratio: np.ndarray
    quiet: np.ndarray

    def false_alarms(self, score: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
        """(share of quiet bars above ``threshold``, alarm onsets per 1,000 quiet bars)."""
        return alarm_rates(score, self.quiet, threshold)


def alarm_rates(score: np.ndarray, quiet: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    alarm = np.nan_to_num(score) > threshold
    onset = alarm & ~np.vstack([np.zeros((1, alarm.shape[1]), bool), alarm[:-1]])
    n = max(int(quiet.sum()), 1)
    return float(alarm[quiet].sum() / n), float(onset[quiet].sum() / n * 1000)


def detect_breaks(
    score: np.ndarray, dates: list, names: list[str], breaks: pl.DataFrame, z: np.ndarray | None = None,
    threshold: float = 0.5, horizon: int = 60, quiet_after: int = 80,
) -> BreakDetection:
    """Score ``score`` [T, N] (columns ``names``, rows ``dates``) against ``breaks`` (ticker, date,
    vol_before, vol_after); breaks on tickers or dates outside the panel are skipped."""
    row, col = {d: i for i, d in enumerate(dates)}, {n: j for j, n in enumerate(names)}
    quiet = np.isfinite(score)
    quiet[:quiet_after] = False
    up, delay, ratio = [], [], []
    for ticker, day, vol_before, vol_after in breaks.select("ticker", "date", "vol_before", "vol_after").iter_rows():
        if ticker not in col or day not in row:
            continue
        i, j = row[day], col[ticker]
        quiet[max(0, i - 5) : i + quiet_after, j] = False
        hits = np.flatnonzero(score[i : i + horizon, j] > threshold)
        up.append(vol_after > vol_before)
        delay.append(float(hits[0]) if hits.size else np.inf)
        before, after = (z[max(0, i - 105) : i - 5, j], z[i : i + 20, j]) if z is not None else (np.array([]), np.array([]))
        enough = np.isfinite(before).sum() > 10 and np.isfinite(after).sum() > 10
        ratio.append(float(np.nanstd(after) / np.nanstd(before)) if enough else np.nan)
    return BreakDetection(np.array(up, dtype=bool), np.array(delay), np.array(ratio), quiet)

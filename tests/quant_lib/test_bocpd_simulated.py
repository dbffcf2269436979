"""BOCPD on the simulated market: planted idiosyncratic vol breaks found, quiet elsewhere,
causal and scale-free input (``quant_lib.regime.bocpd_input``)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.regime.bocpd import detect_change_points
from quant_lib.regime.bocpd_input import idiosyncratic_shocks

WITHIN = 20  # bars after the planted break
QUIET_AFTER = 80  # bars after a break excluded from the false-alarm count


@pytest.fixture(scope="module")
def panels() -> list[tuple[np.ndarray, list, list[str], pl.DataFrame]]:
    out = []
    for seed in (5, 6):
        config = SimulationConfig(n_tickers=25, seed=seed, horizon_end=date(2010, 12, 31), change_point_fraction=0.5)
        sim = simulate_market(config)
        prices = sim.prices.filter(pl.col("ticker") != config.benchmark_ticker)
        wide = prices.pivot(on="ticker", index="date", values="adj_close", sort_columns=True).sort("date")
        names = [c for c in wide.columns if c != "date"]
        returns = np.diff(np.log(wide.select(names).to_numpy().astype(np.float64)), axis=0, prepend=np.nan)
        out.append((returns, wide["date"].to_list(), names, sim.truth.change_points))
    return out


def _rates(score: np.ndarray, dates: list, names: list[str], breaks: pl.DataFrame) -> tuple[list[bool], np.ndarray]:
    row, col = {d: i for i, d in enumerate(dates)}, {n: j for j, n in enumerate(names)}
    quiet = np.isfinite(score)
    quiet[:QUIET_AFTER] = False
    found = []
    for ticker, day, vol_before, vol_after in breaks.iter_rows():
        i, j = row[day], col[ticker]
        quiet[max(0, i - 5) : i + QUIET_AFTER, j] = False
        if vol_after / vol_before >= 2.0:
            found.append(bool((score[i : i + WITHIN, j] > 0.5).any()))
    return found, (score > 0.5)[quiet]


def test_finds_planted_vol_breaks_and_is_quiet_elsewhere(panels) -> None:
    """Measured (seeds 5, 6; 25 tickers, 2005-2010; detector defaults as in the feature panel):
    11 of 19 up-breaks (x2-x3, 58%) within 20 bars, 3.1% of quiet bars > 0.5; on raw returns 42%
    and 3.4%. The planted sector factor (not removed by the market proxy) and the log-vol
    clustering (persistence 0.98, sd 0.3) bound what a per-ticker detector can do here."""
    found, alarms, raw_found, raw_alarms = [], [], [], []
    for returns, dates, names, breaks in panels:
        score, _ = detect_change_points(idiosyncratic_shocks(returns))
        f, a = _rates(score, dates, names, breaks)
        found += f
        alarms.append(a)
        raw = _rates(detect_change_points(returns)[0], dates, names, breaks)
        raw_found += raw[0]
        raw_alarms.append(raw[1])
    detection, false_alarm = np.mean(found), np.concatenate(alarms).mean()
    raw_false_alarm = np.concatenate(raw_alarms).mean()
    print(f"up-breaks {len(found)}: detected {detection:.2f}, false alarms {false_alarm:.3f}; "
          f"raw returns: {np.mean(raw_found):.2f}, {raw_false_alarm:.3f}")
    assert len(found) >= 15
    assert detection >= 0.5
    assert false_alarm < 0.06
    assert detection >= np.mean(raw_found) + 0.1 and false_alarm <= raw_false_alarm


def test_shocks_are_causal_and_scale_free(panels) -> None:
    returns = panels[0][0]
    z = idiosyncratic_shocks(returns)
    for cut in (100, 700):
        np.testing.assert_array_equal(idiosyncratic_shocks(returns[:cut]), z[:cut])
    np.testing.assert_allclose(idiosyncratic_shocks(returns * 100.0), z, atol=1e-9, equal_nan=True)
    score = detect_change_points(z)[0]
    np.testing.assert_allclose(detect_change_points(idiosyncratic_shocks(returns * 100.0))[0], score, atol=1e-6, equal_nan=True)
    assert np.nanmax(np.abs(z)) <= 5.0 and np.isnan(z[:20]).all()
    with pytest.raises(ValueError, match="shape"):
        idiosyncratic_shocks(returns[:, 0])

"""Golden digests of the simulated market: the same seed gives the same bytes across refactors.

The digests were recorded before `_simulate_full` was split into stages; a change of the model
(a new planted structure, the exchange calendar) re-records them in the same commit and says so.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import polars as pl

from quant_lib.data.simulate import SimulationConfig, _simulate_full, simulate_market


def frame_digest(frame: pl.DataFrame) -> str:
    """sha256 over column names, dtypes, null masks and values (strings NUL-joined, temporals as ints)."""
    digest = hashlib.sha256()
    for name, series in zip(frame.columns, frame.get_columns()):
        digest.update(f"{name}:{series.dtype}:{series.len()}".encode())
        digest.update(series.is_null().to_numpy().tobytes())
        if series.dtype == pl.String:
            digest.update("\x00".join(series.fill_null("").to_list()).encode())
        elif series.dtype.is_temporal():
            digest.update(series.to_physical().fill_null(0).to_numpy().astype(np.int64).tobytes())
        elif series.dtype == pl.Boolean:
            digest.update(series.fill_null(False).to_numpy().tobytes())
        else:
            digest.update(np.ascontiguousarray(series.fill_null(0).to_numpy()).tobytes())
    return digest.hexdigest()[:16]


def market_digests(config: SimulationConfig, end: date | None = None) -> dict[str, str]:
    market = simulate_market(config, end=end) if end else _simulate_full.__wrapped__(config)
    frames = {"universe": market.universe, "prices": market.prices, "fundamentals": market.fundamentals}
    truth = market.truth
    for name in ("regime", "betas", "change_points", "characteristics"):
        frames[f"truth.{name}"] = getattr(truth, name)
    return {name: frame_digest(frame) for name, frame in frames.items()}


SMALL = SimulationConfig(n_tickers=10, seed=3)
GOLDEN_SMALL: dict[str, str] = {
    "universe": "780cc2a2e65af059", "prices": "9655d46aa7eb150e", "fundamentals": "9ab92423491ca711",
    "truth.regime": "0ee5e4bf6f7502f8", "truth.betas": "21782b75f679ced0",
    "truth.change_points": "3b15f424458d8e16", "truth.characteristics": "935ebe55e71d4906",
}
GOLDEN_DEFAULT_2007: dict[str, str] = {
    "prices": "0b07c27dae9ef5e8", "universe": "cca1d7a789d66061", "truth.regime": "99f56a0efaf4efdd",
}


def test_small_market_bytes_match_the_recorded_digests() -> None:
    assert market_digests(SMALL) == GOLDEN_SMALL


def test_default_market_prices_to_2007_match_the_recorded_digests() -> None:
    digests = market_digests(SimulationConfig(), end=date(2007, 12, 31))
    assert {k: digests[k] for k in ("prices", "universe", "truth.regime")} == GOLDEN_DEFAULT_2007

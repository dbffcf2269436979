"""Golden digests of the simulated market: the same seed gives the same bytes across refactors.

The digests were first recorded before `_simulate_full` was split into stages (that commit changed
no byte); a change of the model (a new planted structure, the exchange calendar) re-records them
in the same commit and says so.
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
    for name in ("regime", "betas", "change_points", "characteristics", "predictable", "drift_change_points",
                 "market_change_points"):
        frames[f"truth.{name}"] = getattr(truth, name)
    return {name: frame_digest(frame) for name, frame in frames.items()}


SMALL = SimulationConfig(n_tickers=10, seed=3)
GOLDEN_SMALL: dict[str, str] = {
    "universe": "f6989cc3e8992af0", "prices": "5c604fb9a71dc3c3",
    "fundamentals": "882d20ae2c79f8d4", "truth.regime": "89dd72dbafab4b89",
    "truth.betas": "7b03b92179f3a42e", "truth.change_points": "212297be269b8a25",
    "truth.characteristics": "f60e5bc1aa37c1d2", "truth.predictable": "724dd44429f9c400",
    "truth.drift_change_points": "d11747500a86fdb0",
    "truth.market_change_points": "bd12b927801a8788",
}
GOLDEN_DEFAULT_2007: dict[str, str] = {
    "prices": "79bb3ee3761de84c", "universe": "29a9d854b28af016",
    "truth.regime": "f84dc5aa5ad1c9f0",
}


def test_small_market_bytes_match_the_recorded_digests() -> None:
    assert market_digests(SMALL) == GOLDEN_SMALL


def test_default_market_prices_to_2007_match_the_recorded_digests() -> None:
    digests = market_digests(SimulationConfig(), end=date(2007, 12, 31))
    assert {k: digests[k] for k in ("prices", "universe", "truth.regime")} == GOLDEN_DEFAULT_2007

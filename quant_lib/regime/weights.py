"""Regime-dependent factor weights (seed section 4.2.5)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import polars as pl

REGIME_LABELS: tuple[str, ...] = ("Bull", "Bear", "Unknown")

DEFAULT_REGIME_WEIGHTS: dict[str, dict[str, float]] = {
    # Seed section 4.2.5 (each row sums to 0.95), extended with 0.05 spread over accruals, ivol and
    # revisions so every row sums to 1: IVOL, like BAB, matters more in bear markets; revisions,
    # a momentum-like signal, more in bull markets.
    "Bull": {
        "vsm": 0.25, "bab": 0.08, "qmj": 0.17, "upside": 0.17, "pead": 0.13, "sentiment": 0.15,
        "accruals": 0.02, "ivol": 0.01, "revisions": 0.02,
    },
    "Bear": {
        "vsm": 0.08, "bab": 0.22, "qmj": 0.30, "upside": 0.13, "pead": 0.10, "sentiment": 0.12,
        "accruals": 0.02, "ivol": 0.02, "revisions": 0.01,
    },
    "Unknown": {
        "vsm": 0.20, "bab": 0.13, "qmj": 0.22, "upside": 0.17, "pead": 0.10, "sentiment": 0.13,
        "accruals": 0.02, "ivol": 0.015, "revisions": 0.015,
    },
}


class DynamicFactorWeights:
    """Factor weights per market regime, each regime's weights normalized to sum to 1.

    `weights` maps regime -> {factor: weight >= 0} (default: DEFAULT_REGIME_WEIGHTS); a flat
    {factor: weight} mapping applies to every regime. A regime without a table (e.g. "Transition")
    uses the "Unknown" table, which must exist. Factors missing from a regime's table weigh 0.
    """

    REGIME_WEIGHTS = DEFAULT_REGIME_WEIGHTS

    def __init__(self, weights: Mapping[str, Mapping[str, float]] | Mapping[str, float] | None = None):
        table = DEFAULT_REGIME_WEIGHTS if weights is None else weights
        if table and all(isinstance(v, int | float) for v in table.values()):
            table = {label: dict(table) for label in REGIME_LABELS}  # type: ignore[arg-type]
        if "Unknown" not in table:
            raise ValueError(f"weights need an 'Unknown' regime table; got regimes {list(table)}")
        self._weights: dict[str, dict[str, float]] = {}
        for regime, row in table.items():
            if not isinstance(row, Mapping):
                raise ValueError(f"weights for regime {regime!r} must be a mapping factor -> weight")
            bad = {f: w for f, w in row.items() if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0)}
            if bad:
                raise ValueError(f"weights for regime {regime!r} must be finite and >= 0; bad: {bad}")
            total = float(sum(row.values()))
            if total <= 0:
                raise ValueError(f"weights for regime {regime!r} sum to {total}; need a positive total")
            self._weights[str(regime)] = {str(f): float(w) / total for f, w in row.items()}

    @classmethod
    def coerce(cls, weights: DynamicFactorWeights | Mapping | None) -> DynamicFactorWeights:
        return weights if isinstance(weights, DynamicFactorWeights) else cls(weights)

    @property
    def regimes(self) -> tuple[str, ...]:
        return tuple(self._weights)

    @property
    def factors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for row in self._weights.values():
            seen.update(dict.fromkeys(row))
        return tuple(seen)

    def for_regime(self, regime: str | None) -> dict[str, float]:
        """Normalized weights of `regime` ("Unknown" table for an unknown or null regime)."""
        return dict(self._weights.get(regime or "Unknown", self._weights["Unknown"]))

    def to_frame(self) -> pl.DataFrame:
        """Wide table: regime, then one Float64 column per factor (0 where a regime omits it)."""
        factors = self.factors
        return pl.DataFrame(
            {
                "regime": list(self._weights),
                **{f: [self._weights[r].get(f, 0.0) for r in self._weights] for f in factors},
            },
            schema={"regime": pl.String, **{f: pl.Float64 for f in factors}},
        )

    def __repr__(self) -> str:
        return f"DynamicFactorWeights({self._weights!r})"

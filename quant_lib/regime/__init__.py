"""Market regimes: HMM Bull/Bear detection and regime-dependent factor weights."""

from quant_lib.regime.hmm import (
    DEFAULT_LOOKBACK,
    MIN_OBSERVATIONS,
    REQUIRED_HISTORY_DAYS,
    RegimeEstimate,
    fit_regime,
    regime_path,
)
from quant_lib.regime.weights import DEFAULT_REGIME_WEIGHTS, REGIME_LABELS, DynamicFactorWeights

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_REGIME_WEIGHTS",
    "MIN_OBSERVATIONS",
    "REGIME_LABELS",
    "REQUIRED_HISTORY_DAYS",
    "DynamicFactorWeights",
    "RegimeEstimate",
    "fit_regime",
    "regime_path",
]

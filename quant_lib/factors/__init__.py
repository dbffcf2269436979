"""Alpha factors over the long (date x ticker) panel, their cross-sectional processing, composite
rankings and diagnostics (seed section 4.2)."""

from quant_lib.factors.diagnostics import (
    beta_neutral_forward_returns,
    factor_diagnostics,
    forward_returns,
    to_markdown,
)
from quant_lib.factors.fundamental_factors import (
    QUALITY_BOUNDS,
    QUALITY_SUBCOMPONENTS,
    accruals_anomaly,
    analyst_revisions,
    news_sentiment_score,
    post_earnings_drift,
    quality_minus_junk,
)
from quant_lib.factors.pipeline import process_factors
from quant_lib.factors.price_factors import (
    betting_against_beta,
    idiosyncratic_volatility,
    volatility_scaled_momentum,
)
from quant_lib.factors.rankings import BREAKDOWN_FACTORS, EXTRA_BREAKDOWN_FACTORS, RANKING_COLUMNS, compute_rankings
from quant_lib.factors.registry import (
    EXTRA_COLUMNS,
    FACTOR_NAMES,
    FACTORS,
    REQUIRED_LOOKBACK_DAYS,
    FactorComputation,
    FactorSpec,
    active_rows,
    compute_factor_values,
)
from quant_lib.factors.valuation import (
    ValuationParams,
    dcf_value_per_share,
    ddm_value_per_share,
    valuation_upside,
)

__all__ = [
    "BREAKDOWN_FACTORS",
    "EXTRA_BREAKDOWN_FACTORS",
    "EXTRA_COLUMNS",
    "FACTORS",
    "FACTOR_NAMES",
    "QUALITY_BOUNDS",
    "QUALITY_SUBCOMPONENTS",
    "RANKING_COLUMNS",
    "REQUIRED_LOOKBACK_DAYS",
    "FactorComputation",
    "FactorSpec",
    "ValuationParams",
    "accruals_anomaly",
    "active_rows",
    "analyst_revisions",
    "beta_neutral_forward_returns",
    "betting_against_beta",
    "compute_factor_values",
    "compute_rankings",
    "dcf_value_per_share",
    "ddm_value_per_share",
    "factor_diagnostics",
    "forward_returns",
    "idiosyncratic_volatility",
    "news_sentiment_score",
    "post_earnings_drift",
    "process_factors",
    "quality_minus_junk",
    "to_markdown",
    "valuation_upside",
    "volatility_scaled_momentum",
]

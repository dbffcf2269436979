"""Portfolio construction: covariance estimators, HRP, Black-Litterman, Kelly / mean-variance
(compiled cvxpy problems), minimum variance, risk parity, volatility targeting, position sizing
and weight caps. Pure functions: numpy / polars in, numpy out."""

from quant_lib.portfolio.black_litterman import (
    BlackLittermanResult,
    black_litterman,
    black_litterman_posterior,
    black_litterman_weights,
    implied_returns,
    market_weights_from_caps,
    views_from_scores,
)
from quant_lib.portfolio.constraints import apply_sector_caps, apply_weight_caps, cap_weights
from quant_lib.portfolio.covariance import (
    cov_to_corr,
    covariance_matrix,
    ewma_covariance,
    ledoit_wolf_covariance,
    returns_matrix,
    sample_covariance,
)
from quant_lib.portfolio.hrp import hrp_order, hrp_weights, recursive_bisection
from quant_lib.portfolio.kelly import (
    KellyOptimizer,
    MeanVarianceOptimizer,
    PortfolioOptimizationError,
    covariance_factor,
    statistical_factor_model,
)
from quant_lib.portfolio.optimizers import (
    METHODS,
    OptimizationResult,
    equal_weights,
    min_variance_weights,
    optimize_portfolio,
    risk_parity_weights,
)
from quant_lib.portfolio.risk_control import VolTargetResult, apply_vol_targeting
from quant_lib.portfolio.sizing import PositionSizer, kelly_fraction

__all__ = [
    "METHODS",
    "BlackLittermanResult",
    "KellyOptimizer",
    "MeanVarianceOptimizer",
    "OptimizationResult",
    "PortfolioOptimizationError",
    "PositionSizer",
    "VolTargetResult",
    "apply_sector_caps",
    "apply_vol_targeting",
    "apply_weight_caps",
    "black_litterman",
    "black_litterman_posterior",
    "black_litterman_weights",
    "cap_weights",
    "cov_to_corr",
    "covariance_factor",
    "covariance_matrix",
    "equal_weights",
    "ewma_covariance",
    "hrp_order",
    "hrp_weights",
    "implied_returns",
    "kelly_fraction",
    "ledoit_wolf_covariance",
    "market_weights_from_caps",
    "min_variance_weights",
    "optimize_portfolio",
    "recursive_bisection",
    "returns_matrix",
    "risk_parity_weights",
    "sample_covariance",
    "statistical_factor_model",
    "views_from_scores",
]

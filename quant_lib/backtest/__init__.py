"""Backtesting: vectorized target-weight engine, event-driven engine, metrics, statistics, validation."""

from quant_lib.backtest.event_engine import BacktestEngine, BacktestResult, EventBacktestConfig
from quant_lib.backtest.metrics import METRIC_KEYS, benchmark_relative_metrics, compute_metrics
from quant_lib.backtest.statistics import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    sharpe_ratio_variance,
)
from quant_lib.backtest.validation import PurgedWalkForwardCV, WalkForwardSplitter, walk_forward_optimize
from quant_lib.backtest.vectorized import (
    BacktestConfig,
    CostModel,
    PricePanel,
    VectorizedBacktestResult,
    prepare_price_panel,
    run_vectorized_backtest,
)

__all__ = [
    "METRIC_KEYS",
    "BacktestConfig",
    "BacktestEngine",
    "BacktestResult",
    "CostModel",
    "EventBacktestConfig",
    "PricePanel",
    "PurgedWalkForwardCV",
    "VectorizedBacktestResult",
    "WalkForwardSplitter",
    "benchmark_relative_metrics",
    "compute_metrics",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "prepare_price_panel",
    "probabilistic_sharpe_ratio",
    "run_vectorized_backtest",
    "sharpe_ratio",
    "sharpe_ratio_variance",
    "walk_forward_optimize",
]

"""Research tools: the DEAP genetic optimizer and the top-N strategy fitness it searches."""

from quant_lib.research.evolution import GAResult, GeneticOptimizer, ParameterSpec, builtin_map, parse_param_ranges
from quant_lib.research.fitness import (
    StrategyData,
    StrategyFitnessConfig,
    make_strategy_fitness,
    prepare_strategy_data,
    strategy_fitness,
    strategy_returns,
    top_n_strategy_weights,
    top_n_weight_matrix,
)

__all__ = [
    "GAResult",
    "GeneticOptimizer",
    "ParameterSpec",
    "StrategyData",
    "StrategyFitnessConfig",
    "builtin_map",
    "make_strategy_fitness",
    "parse_param_ranges",
    "prepare_strategy_data",
    "strategy_fitness",
    "strategy_returns",
    "top_n_strategy_weights",
    "top_n_weight_matrix",
]

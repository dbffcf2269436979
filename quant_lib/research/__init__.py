"""Research tools: the DEAP genetic optimizer and strategy fitness functions."""

from quant_lib.research.evolution import GAResult, GeneticOptimizer, ParameterSpec, builtin_map, parse_param_ranges

__all__ = ["GAResult", "GeneticOptimizer", "ParameterSpec", "builtin_map", "parse_param_ranges"]

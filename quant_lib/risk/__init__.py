"""Risk: parametric / historical VaR and CVaR, component VaR, risk limits with ATR stops, and
Black-Scholes tail-hedge costs. Pure functions: numpy in, numpy / dict / polars out."""

from quant_lib.risk.hedging import black_scholes_call, black_scholes_put, tail_hedge_cost
from quant_lib.risk.limits import Position, RiskLimits, RiskManager
from quant_lib.risk.var import (
    ComponentVaR,
    component_var,
    component_var_frame,
    historical_cvar,
    historical_var,
    parametric_var,
)

__all__ = [
    "ComponentVaR",
    "Position",
    "RiskLimits",
    "RiskManager",
    "black_scholes_call",
    "black_scholes_put",
    "component_var",
    "component_var_frame",
    "historical_cvar",
    "historical_var",
    "parametric_var",
    "tail_hedge_cost",
]

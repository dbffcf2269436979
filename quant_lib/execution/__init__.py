"""Execution planning: VWAP slicing, square-root impact and the trade list (polars / numpy, no I/O)."""

from quant_lib.execution.trade_list import TRADE_LIST_SCHEMA, build_trade_list, conviction_labels
from quant_lib.execution.vwap import (
    DEFAULT_VOLUME_PROFILE,
    largest_remainder_allocation,
    square_root_impact_bps,
    vwap_schedule,
)

__all__ = [
    "DEFAULT_VOLUME_PROFILE",
    "TRADE_LIST_SCHEMA",
    "build_trade_list",
    "conviction_labels",
    "largest_remainder_allocation",
    "square_root_impact_bps",
    "vwap_schedule",
]

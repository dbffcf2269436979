"""Execution: VWAP slicing, square-root impact, the trade list, the paper broker and the order ledger (no I/O)."""

from quant_lib.execution.ledger import (
    MemoryLedger,
    OrderLedger,
    OrderTracker,
    client_order_id,
    duplicate_client_order_ids,
    fill_increment,
)
from quant_lib.execution.paper import PaperExecutor
from quant_lib.execution.trade_list import TRADE_LIST_SCHEMA, build_trade_list, conviction_labels
from quant_lib.execution.vwap import (
    DEFAULT_VOLUME_PROFILE,
    largest_remainder_allocation,
    square_root_impact_bps,
    vwap_schedule,
)

__all__ = [
    "MemoryLedger",
    "OrderLedger",
    "OrderTracker",
    "fill_increment",
    "PaperExecutor",
    "client_order_id",
    "duplicate_client_order_ids",
    "DEFAULT_VOLUME_PROFILE",
    "TRADE_LIST_SCHEMA",
    "build_trade_list",
    "conviction_labels",
    "largest_remainder_allocation",
    "square_root_impact_bps",
    "vwap_schedule",
]

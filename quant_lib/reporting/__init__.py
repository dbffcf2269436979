"""Reporting: the Plotly HTML tear sheet."""

from quant_lib.reporting.tearsheet import (
    ATTRIBUTION_UNAVAILABLE,
    METRICS_TITLE,
    PANEL_TITLES,
    build_tearsheet,
    build_tearsheet_figure,
    derive_series,
    monthly_returns_table,
)

__all__ = [
    "ATTRIBUTION_UNAVAILABLE",
    "METRICS_TITLE",
    "PANEL_TITLES",
    "build_tearsheet",
    "build_tearsheet_figure",
    "derive_series",
    "monthly_returns_table",
]

"""Plotly HTML tear sheet for a backtest (seed 004 §1 ``PerformanceVisualizer``: six panels).

Pure: frames in, one self-contained HTML string out (plotly.js is inlined so the page works
offline). Panels: equity vs benchmark, drawdown, rolling Sharpe, monthly-returns heatmap,
exposure and turnover, factor attribution; plus a metrics table. Derived series are polars
expressions over the whole daily frame:

- drawdown_t = equity_t / max_{s<=t} equity_s - 1
- rolling Sharpe_t = mean(r_{t-w+1..t}) / std(r_{t-w+1..t}) * sqrt(periods_per_year), w = 63
- monthly return = prod(1 + r_t) - 1 over the trading days of each (year, month)
- benchmark equity_t = equity_0 * prod_{s<=t}(1 + b_s) (null benchmark returns count as 0)
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from quant_lib._lazy import LazyModule

go = LazyModule("plotly.graph_objects")
_subplots = LazyModule("plotly.subplots")

PANEL_TITLES = (
    "Equity vs Benchmark",
    "Drawdown",
    "Rolling Sharpe (63d)",
    "Monthly Returns (%)",
    "Exposure & Turnover",
    "Factor Attribution",
)
METRICS_TITLE = "Performance Metrics"
ATTRIBUTION_UNAVAILABLE = "Factor attribution not available"
MONTH_LABELS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_REQUIRED_DAILY = ("date", "equity", "returns")
_OPTIONAL_DAILY = ("benchmark_returns", "gross_exposure", "net_exposure", "turnover")


def _validate_daily(daily: pl.DataFrame) -> pl.DataFrame:
    missing = [column for column in _REQUIRED_DAILY if column not in daily.columns]
    if missing:
        raise ValueError(f"daily frame is missing required columns {missing}; has {daily.columns}")
    if daily.height == 0:
        raise ValueError("daily frame is empty: nothing to plot")
    if daily.schema["date"] != pl.Date:
        raise ValueError(f"daily.date must be pl.Date, got {daily.schema['date']}")
    duplicated = daily.filter(pl.col("date").is_duplicated())["date"].unique().sort()
    if duplicated.len():
        raise ValueError(f"daily frame has duplicate dates: {duplicated.head(5).to_list()}")
    if daily["equity"].null_count() or (daily["equity"] <= 0).any():
        raise ValueError("daily.equity must be positive and non-null")
    columns = [c for c in (*_REQUIRED_DAILY, *_OPTIONAL_DAILY) if c in daily.columns]
    return daily.select(columns).sort("date").with_columns(
        pl.col(c).cast(pl.Float64) for c in columns if c != "date"
    )


def derive_series(daily: pl.DataFrame, rolling_window: int = 63, periods_per_year: int = 252) -> pl.DataFrame:
    """Add benchmark_equity, drawdown and rolling_sharpe to a validated daily frame."""
    returns = pl.col("returns").fill_null(0.0)
    rolling_std = returns.rolling_std(rolling_window)
    derived = [
        (pl.col("equity") / pl.col("equity").cum_max() - 1.0).alias("drawdown"),
        pl.when(rolling_std > 0)
        .then(returns.rolling_mean(rolling_window) / rolling_std * math.sqrt(periods_per_year))
        .alias("rolling_sharpe"),
    ]
    if "benchmark_returns" in daily.columns:
        derived.append(
            (pl.col("equity").first() * (1.0 + pl.col("benchmark_returns").fill_null(0.0)).cum_prod()).alias(
                "benchmark_equity"
            )
        )
    return daily.with_columns(derived)


def monthly_returns_table(daily: pl.DataFrame) -> pl.DataFrame:
    """Compounded monthly returns as a (year x month 1..12) table; months without data are null."""
    monthly = (
        daily.group_by(pl.col("date").dt.year().alias("year"), pl.col("date").dt.month().alias("month"))
        .agg(((1.0 + pl.col("returns").fill_null(0.0)).product() - 1.0).alias("monthly_return"))
        .sort("year", "month")
    )
    wide = monthly.pivot(on="month", index="year", values="monthly_return", sort_columns=True)
    month_columns = [str(m) for m in range(1, 13)]
    return wide.with_columns(
        pl.lit(None, dtype=pl.Float64).alias(m) for m in month_columns if m not in wide.columns
    ).select("year", *month_columns).sort("year")


def _format_metric(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.4f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _add_unavailable(fig: go.Figure, row: int, text: str) -> None:
    subplot = fig.get_subplot(row, 1)
    fig.add_annotation(
        text=text, showarrow=False, font={"size": 16, "color": "#666"}, xref="paper", yref="paper",
        x=sum(subplot.xaxis.domain) / 2.0, y=sum(subplot.yaxis.domain) / 2.0,
    )
    fig.update_xaxes(visible=False, row=row, col=1)
    fig.update_yaxes(visible=False, row=row, col=1)


def _make_grid(rolling_window: int) -> go.Figure:
    """Empty 7-row figure: six panels (row 5 with a secondary y axis) and the metrics table."""
    titles = list(PANEL_TITLES)
    titles[2] = f"Rolling Sharpe ({rolling_window}d)"
    return _subplots.make_subplots(
        rows=7,
        cols=1,
        subplot_titles=[*titles, METRICS_TITLE],
        specs=[[{}], [{}], [{}], [{}], [{"secondary_y": True}], [{}], [{"type": "table"}]],
        vertical_spacing=0.035,
        row_heights=[1.2, 0.8, 0.8, 1.0, 0.8, 0.9, 1.0],
    )


def _add_performance_panels(fig: go.Figure, frame: pl.DataFrame, dates: list) -> None:
    """Rows 1-3: equity vs benchmark, drawdown, rolling Sharpe with its zero line."""
    fig.add_trace(go.Scatter(x=dates, y=frame["equity"].to_list(), name="Strategy", line={"color": "#1f77b4"}), 1, 1)
    if "benchmark_equity" in frame.columns:
        fig.add_trace(
            go.Scatter(x=dates, y=frame["benchmark_equity"].to_list(), name="Benchmark", line={"color": "#7f7f7f"}),
            1, 1,
        )
    fig.add_trace(
        go.Scatter(
            x=dates, y=frame["drawdown"].to_list(), name="Drawdown", fill="tozeroy", line={"color": "#d62728"},
        ),
        2, 1,
    )
    fig.add_trace(
        go.Scatter(x=dates, y=frame["rolling_sharpe"].to_list(), name="Rolling Sharpe", line={"color": "#2ca02c"}),
        3, 1,
    )
    fig.add_hline(y=0.0, line={"color": "#999", "width": 1}, row=3, col=1)


def _add_monthly_heatmap(fig: go.Figure, frame: pl.DataFrame) -> None:
    """Row 4: monthly returns in percent, years top to bottom."""
    heat = monthly_returns_table(frame)
    month_values = heat.select(pl.exclude("year") * 100.0)
    fig.add_trace(
        go.Heatmap(
            z=month_values.rows(),
            x=list(MONTH_LABELS),
            y=[str(y) for y in heat["year"].to_list()],
            colorscale="RdYlGn",
            zmid=0.0,
            texttemplate="%{z:.1f}",
            showscale=False,
            name="Monthly return %",
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
        ),
        4, 1,
    )
    fig.update_yaxes(type="category", autorange="reversed", row=4, col=1)


def _add_exposure_panel(fig: go.Figure, frame: pl.DataFrame, dates: list) -> bool:
    """Row 5: exposures (left axis) and turnover bars (right axis); False when neither is present."""
    exposure_columns = [c for c in ("gross_exposure", "net_exposure") if c in frame.columns]
    for column, color in zip(exposure_columns, ("#9467bd", "#8c564b")):
        fig.add_trace(
            go.Scatter(x=dates, y=frame[column].to_list(), name=column.replace("_", " "), line={"color": color}),
            5, 1, secondary_y=False,
        )
    if "turnover" in frame.columns:
        fig.add_trace(
            go.Bar(x=dates, y=frame["turnover"].to_list(), name="turnover", marker={"color": "#ff7f0e"}, opacity=0.6),
            5, 1, secondary_y=True,
        )
    has_panel = bool(exposure_columns) or "turnover" in frame.columns
    if not has_panel:
        _add_unavailable(fig, 5, "Exposure and turnover not available")
    return has_panel


def _add_attribution_panel(fig: go.Figure, attribution: pl.DataFrame | None) -> None:
    """Row 6: total contribution per factor, largest first; a notice when there is none."""
    if attribution is None or attribution.height == 0:
        _add_unavailable(fig, 6, ATTRIBUTION_UNAVAILABLE)
        return
    missing = [c for c in ("factor", "contribution") if c not in attribution.columns]
    if missing:
        raise ValueError(f"attribution frame is missing columns {missing}; has {attribution.columns}")
    totals = (
        attribution.group_by("factor")
        .agg(pl.col("contribution").cast(pl.Float64).sum().alias("total_contribution"))
        .sort("total_contribution", "factor", descending=[True, False])
    )
    fig.add_trace(
        go.Bar(
            x=totals["factor"].cast(pl.String).to_list(),
            y=totals["total_contribution"].to_list(),
            name="Factor contribution",
            marker={"color": ["#2ca02c" if v >= 0 else "#d62728" for v in totals["total_contribution"]]},
        ),
        6, 1,
    )


def _add_metrics_table(fig: go.Figure, metrics: Mapping[str, Any]) -> None:
    """Row 7: the metrics as a two-column table, in the given order."""
    metric_items = list(metrics.items()) or [("(no metrics supplied)", "")]
    fig.add_trace(
        go.Table(
            header={"values": ["Metric", "Value"], "fill_color": "#1f77b4", "font": {"color": "white"}},
            cells={
                "values": [[str(k) for k, _ in metric_items], [_format_metric(v) for _, v in metric_items]],
                "align": ["left", "right"],
            },
        ),
        7, 1,
    )


def _apply_layout(fig: go.Figure, title: str, has_exposure_panel: bool) -> None:
    """Axis titles, page title, size, legend and margins."""
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_yaxes(title_text="Sharpe", row=3, col=1)
    if has_exposure_panel:
        fig.update_yaxes(title_text="exposure", row=5, col=1, secondary_y=False)
        fig.update_yaxes(title_text="turnover", row=5, col=1, secondary_y=True)
    fig.update_layout(
        title={"text": title, "x": 0.5, "y": 0.995, "yref": "container", "yanchor": "top", "font": {"size": 22}},
        height=2300,
        template="plotly_white",
        legend={"orientation": "h", "y": 1.02, "x": 0.0, "yanchor": "bottom"},
        margin={"l": 70, "r": 70, "t": 140, "b": 40},
        barmode="overlay",
    )


def build_tearsheet_figure(
    daily: pl.DataFrame,
    attribution: pl.DataFrame | None,
    title: str,
    metrics: Mapping[str, Any],
    rolling_window: int = 63,
    periods_per_year: int = 252,
) -> go.Figure:
    """The tear sheet as a Plotly figure (7 stacked rows: 6 panels + the metrics table)."""
    frame = derive_series(_validate_daily(daily), rolling_window, periods_per_year)
    dates = frame["date"].to_list()
    fig = _make_grid(rolling_window)
    _add_performance_panels(fig, frame, dates)
    _add_monthly_heatmap(fig, frame)
    has_exposure_panel = _add_exposure_panel(fig, frame, dates)
    _add_attribution_panel(fig, attribution)
    _add_metrics_table(fig, metrics)
    _apply_layout(fig, title, has_exposure_panel)
    return fig


def build_tearsheet(
    daily: pl.DataFrame,
    attribution: pl.DataFrame | None,
    title: str,
    metrics: Mapping[str, Any],
    rolling_window: int = 63,
    periods_per_year: int = 252,
) -> str:
    """Self-contained HTML tear sheet (plotly.js inlined; no network needed to view it).

    ``daily``: date, equity, returns and optionally benchmark_returns, gross_exposure,
    net_exposure, turnover. ``attribution``: (date, factor, contribution) or None, which renders
    a "not available" panel. ``metrics``: shown as a two-column table, in the given order.
    """
    fig = build_tearsheet_figure(daily, attribution, title, metrics, rolling_window, periods_per_year)
    body = fig.to_html(full_html=False, include_plotlyjs=True, div_id="tearsheet", config={"responsive": True})
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n</head>\n<body style=\"margin:0;background:#fff\">\n"
        f"{body}\n</body>\n</html>\n"
    )

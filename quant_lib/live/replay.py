"""Backtest by replay: bars through a started SelfTrainer with a paper broker, and the per-day frame
the tear sheet (``quant_lib.reporting.tearsheet``) plots. The same code path as live trading."""

from __future__ import annotations

from typing import Any

import polars as pl


def daily_report_frame(results: list[dict[str, Any]], positions: list[dict[str, float]]) -> pl.DataFrame:
    """Per-day equity, returns, exposure and turnover of a bar-by-bar run (for the tear sheet)."""
    bars = pl.DataFrame({
        "timestamp": [r["timestamp"] for r in results],
        "equity": [r["equity"] for r in results],
        "gross": [float(sum(abs(v) for v in p.values())) for p in positions],
        "net": [float(sum(p.values())) for p in positions],
        "traded": [float(sum(abs(f["qty"] * f["price"]) for f in r["fills"] if f.get("status") == "filled")) for r in results],
    })
    daily = (
        bars.group_by(pl.col("timestamp").dt.date().alias("date"), maintain_order=True)
        .agg(pl.col("equity").last(), pl.col("gross").last(), pl.col("net").last(), pl.col("traded").sum())
        .sort("date")
    )
    return daily.with_columns(
        (pl.col("equity") / pl.col("equity").shift(1) - 1).fill_null(0.0).alias("returns"),
        (pl.col("gross") / pl.col("equity")).alias("gross_exposure"),
        (pl.col("net") / pl.col("equity")).alias("net_exposure"),
        (pl.col("traded") / pl.col("equity")).alias("turnover"),
    ).select("date", "equity", "returns", "gross_exposure", "net_exposure", "turnover")


def run_bar_backtest(trainer: Any, groups: list[dict[str, dict[str, Any]]], capital: float,
                     progress: Any = None) -> tuple[dict[str, float], pl.DataFrame, list[dict[str, Any]]]:
    """Replay ``groups`` through a started SelfTrainer with a paper broker; (metrics, daily frame, trades)."""
    from quant_lib.backtest.metrics import compute_metrics

    results, positions = [], []
    for group in groups:
        result = trainer.process_bar(group)
        if result.get("skipped"):
            continue
        results.append(result)
        state = trainer.executor.get_portfolio_state()["positions"]
        positions.append({s: p["market_value"] for s, p in state.items()})
        if progress is not None:
            progress()
    trainer.shutdown()
    if not results:
        raise ValueError("no bars in the requested range")
    results[-1]["equity"] = trainer.executor.get_portfolio_state()["equity"]
    fills = [f for r in results for f in r["fills"] if f.get("status") == "filled"]
    trades = [{"pnl": f["realized_pnl"] - f["commission"]} for f in fills if f.get("realized_pnl")]
    equity = [r["equity"] for r in results]
    metrics = compute_metrics(equity, trades, capital, trainer.config.periods_per_year)
    metrics["fills"] = float(len(fills))
    return metrics, daily_report_frame(results, positions), fills

"""Plotly tear sheet: derived series against hand computations, HTML structure, offline
plotly.js, bad input, and a headless-Chromium render when Chromium is installed."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant_lib.reporting import (
    ATTRIBUTION_UNAVAILABLE,
    METRICS_TITLE,
    PANEL_TITLES,
    build_tearsheet,
    derive_series,
    monthly_returns_table,
)

CHROMIUM = "/usr/bin/chromium"


def make_daily(n_days: int = 400, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pl.date_range(dt.date(2022, 1, 3), dt.date(2024, 12, 31), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:n_days]
    returns = rng.normal(0.0006, 0.01, n_days)
    return pl.DataFrame(
        {
            "date": dates,
            "returns": returns,
            "benchmark_returns": rng.normal(0.0004, 0.011, n_days),
            "gross_exposure": 1.0 + 0.1 * np.sin(np.arange(n_days) / 25.0),
            "net_exposure": 0.8 + 0.05 * np.cos(np.arange(n_days) / 15.0),
            "turnover": np.abs(rng.normal(0.05, 0.02, n_days)),
        }
    ).with_columns(equity=1e6 * (1.0 + pl.col("returns")).cum_prod())


def make_attribution(daily: pl.DataFrame) -> pl.DataFrame:
    factors = ["momentum", "value", "low_beta"]
    n = daily.height
    rng = np.random.default_rng(9)
    return pl.DataFrame(
        {
            "date": np.repeat(daily["date"].to_numpy(), len(factors)),
            "factor": factors * n,
            "contribution": rng.normal(0.0001, 0.001, n * len(factors)),
        }
    )


def test_derived_series_known_answers():
    daily = pl.DataFrame(
        {
            "date": [dt.date(2024, 1, d) for d in (2, 3, 4, 5)],
            "equity": [100.0, 110.0, 99.0, 121.0],
            "returns": [0.0, 0.1, -0.1, 0.2222222222],
            "benchmark_returns": [None, 0.05, 0.0, -0.1],
        }
    )
    derived = derive_series(daily, rolling_window=2, periods_per_year=4)
    assert derived["drawdown"].to_list() == pytest.approx([0.0, 0.0, -0.1, 0.0])
    assert derived["benchmark_equity"].to_list() == pytest.approx([100.0, 105.0, 105.0, 94.5])
    r = [0.0, 0.1, -0.1, 0.2222222222]
    expected_sharpe = [None] + [
        (np.mean(r[i - 1 : i + 1]) / np.std(r[i - 1 : i + 1], ddof=1)) * 2.0 for i in (1, 2, 3)
    ]
    assert derived["rolling_sharpe"][0] is None
    assert derived["rolling_sharpe"].to_list()[1:] == pytest.approx(expected_sharpe[1:])


def test_monthly_returns_compound_within_month():
    daily = pl.DataFrame(
        {
            "date": [dt.date(2023, 12, 29), dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 3, 1)],
            "returns": [0.02, 0.10, -0.05, 0.01],
        }
    )
    table = monthly_returns_table(daily)
    assert table.columns == ["year", *[str(m) for m in range(1, 13)]]
    assert table["year"].to_list() == [2023, 2024]
    row_2024 = table.filter(pl.col("year") == 2024).row(0, named=True)
    assert row_2024["1"] == pytest.approx(1.10 * 0.95 - 1.0)
    assert row_2024["2"] is None
    assert row_2024["3"] == pytest.approx(0.01)
    assert table.filter(pl.col("year") == 2023)["12"].item() == pytest.approx(0.02)


def test_html_has_all_panels_offline_plotly_and_metrics():
    daily = make_daily()
    html = build_tearsheet(
        daily, make_attribution(daily), "Momentum <top 20>", {"sharpe_ratio": 1.2345678, "total_trades": 1234}
    )
    assert html.startswith("<!DOCTYPE html>")
    for title in (*PANEL_TITLES, METRICS_TITLE):
        assert title.replace("&", "&amp;") in html or title in html
    assert '<div id="tearsheet"' in html
    assert re.search(r'Plotly\.newPlot\(\s*"tearsheet"', html)
    assert re.search(r"<script[^>]*\bsrc=", html) is None, "no external script may be loaded"
    assert len(html) > 1_000_000, "plotly.js must be inlined for offline viewing"
    assert "<title>Momentum &lt;top 20&gt;</title>" in html
    assert "sharpe_ratio" in html and "1.2346" in html and "1,234" in html
    assert "momentum" in html and "low_beta" in html
    assert ATTRIBUTION_UNAVAILABLE not in html


def test_missing_attribution_and_exposure_render_placeholders():
    daily = make_daily(120).select("date", "equity", "returns")
    html = build_tearsheet(daily, None, "Minimal", {})
    assert ATTRIBUTION_UNAVAILABLE in html
    assert "Exposure and turnover not available" in html
    for title in PANEL_TITLES:
        assert title in html or title.replace("&", "&amp;") in html


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop("equity"), r"missing required columns \['equity'\]"),
        (lambda d: d.head(0), "empty"),
        (lambda d: pl.concat([d, d.head(1)]), "duplicate dates"),
        (lambda d: d.with_columns(pl.col("date").cast(pl.Datetime)), "must be pl.Date"),
        (lambda d: d.with_columns(equity=pl.lit(-1.0)), "positive"),
    ],
)
def test_bad_daily_frame(mutate, message):
    with pytest.raises(ValueError, match=message):
        build_tearsheet(mutate(make_daily(50)), None, "bad", {})


def test_attribution_without_required_columns():
    daily = make_daily(50)
    with pytest.raises(ValueError, match=r"attribution frame is missing columns \['contribution'\]"):
        build_tearsheet(daily, make_attribution(daily).drop("contribution"), "bad", {})


def _png_size_and_distinct_colors(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours in a sample of rows) from a PNG, decoded with zlib."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            rgb = image.convert("RGB")
            colors = rgb.getcolors(maxcolors=1 << 20)
            return rgb.width, rgb.height, len(colors) if colors else 1 << 20
    except ImportError:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        offset, idat, width, height = 8, b"", 0, 0
        while offset < len(data):
            (length,) = struct.unpack(">I", data[offset : offset + 4])
            kind = data[offset + 4 : offset + 8]
            body = data[offset + 8 : offset + 8 + length]
            if kind == b"IHDR":
                width, height = struct.unpack(">II", body[:8])
            elif kind == b"IDAT":
                idat += body
            offset += 12 + length
        raw = zlib.decompress(idat)
        return width, height, len(set(raw))


def test_renders_in_headless_chromium(tmp_path):
    daily = make_daily()
    html = build_tearsheet(daily, make_attribution(daily), "Render check", {"sharpe_ratio": 1.0})
    page = tmp_path / "tearsheet.html"
    page.write_text(html, encoding="utf-8")
    assert len(re.findall(r'Plotly\.newPlot\(\s*"tearsheet"', html)) == 1
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        # No browser on this host: the structure checks above and in the other tests stand in.
        assert all(title in html or title.replace("&", "&amp;") in html for title in PANEL_TITLES)
        return
    screenshot = tmp_path / "tearsheet.png"
    command = [
        CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1400,2400",
        "--virtual-time-budget=5000",
        page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert screenshot.exists(), f"chromium wrote no screenshot: {completed.stderr[-2000:]}"
    assert screenshot.stat().st_size > 50_000
    width, height, distinct = _png_size_and_distinct_colors(screenshot)
    assert (width, height) == (1400, 2400)
    assert distinct > 100, f"screenshot looks blank ({distinct} distinct colours)"


def test_accepts_the_vectorized_backtest_daily_frame():
    from quant_lib.backtest.vectorized import BacktestConfig, run_vectorized_backtest

    rng = np.random.default_rng(4)
    dates = make_daily(300)["date"]
    tickers = ["AAA", "AAB", "AAC", "SPY"]
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0004, 0.01, (300, 4)), axis=0))
    prices = pl.DataFrame(
        {"date": np.repeat(dates.to_numpy(), 4), "ticker": tickers * 300, "adj_close": closes.ravel()}
    )
    weights = prices.filter(pl.col("ticker") != "SPY").select("date", "ticker", weight=pl.lit(0.3))
    result = run_vectorized_backtest(weights, prices, BacktestConfig(rebalance="monthly"))
    html = build_tearsheet(result.daily, None, "Backtest", result.metrics)
    assert "sharpe_ratio" in html and ATTRIBUTION_UNAVAILABLE in html
    assert "Exposure and turnover not available" not in html

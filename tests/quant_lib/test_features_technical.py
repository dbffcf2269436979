"""Technical and calendar features: TA-Lib as the reference, plain formulas, truncation invariance."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import talib

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.features.calendar_features import TIME_FEATURE_NAMES, compute_time_features
from quant_lib.features.technical import TECHNICAL_FEATURE_NAMES, TECHNICAL_FEATURES, compute_technical_features

WARMUP = 250  # rows after which recursive averages (TA-Lib seeds with an SMA) agree to ~1e-9


@pytest.fixture(scope="module")
def ohlcv() -> pl.DataFrame:
    market = simulate_market(SimulationConfig(n_tickers=6, seed=7), end=date(2006, 8, 31))
    tickers = market.prices["ticker"].unique().sort()[:3]
    return market.prices.filter(pl.col("ticker").is_in(tickers.implode())).drop("adj_close")


@pytest.fixture(scope="module")
def features(ohlcv: pl.DataFrame) -> pl.DataFrame:
    return compute_technical_features(ohlcv)


def _one(features: pl.DataFrame) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    first = features.filter(pl.col("ticker") == features["ticker"][0])
    cols = {k: first[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
    return cols, first


def _reference(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    o, h, l, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))  # noqa: E741
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0)
    fastk, fastd = talib.STOCHF(h, l, c, 14, 3, 0)
    obv = talib.OBV(c, v)
    vol_sum = talib.SUM(v, 10)
    return {
        "log_return_1": np.log(c / np.roll(c, 1)),
        "roc_10": talib.ROC(c, 10),
        "sma_20_dist": c / talib.SMA(c, 20) - 1,
        "sma_50_dist": c / talib.SMA(c, 50) - 1,
        "ema_12_dist": c / talib.EMA(c, 12) - 1,
        "ema_26_dist": c / talib.EMA(c, 26) - 1,
        "macd": macd / c,
        "rsi_14": talib.RSI(c, 14),
        "rsi_7": talib.RSI(c, 7),
        "stoch_k_14": fastk,
        "stoch_d_3": fastd,
        "williams_r_14": talib.WILLR(h, l, c, 14),
        "cci_20": talib.CCI(h, l, c, 20),
        "plus_di_14": talib.PLUS_DI(h, l, c, 14),
        "minus_di_14": talib.MINUS_DI(h, l, c, 14),
        "adx_14": talib.ADX(h, l, c, 14),
        "atr_14": talib.ATR(h, l, c, 14),
        "natr_14": talib.NATR(h, l, c, 14),
        "bb_position_20": (c - lower) / (upper - lower),
        "bb_width_20": (upper - lower) / middle,
        "mfi_14": talib.MFI(h, l, c, v, 14),
        "obv_slope_10": (obv - np.roll(obv, 10)) / vol_sum,
        "realized_vol_20": talib.STDDEV(np.log(c / np.roll(c, 1)), 20) * np.sqrt(20 / 19),
    }


def test_features_match_talib(features: pl.DataFrame) -> None:
    cols, first = _one(features)
    for name, expected in _reference(cols).items():
        got = first[name].to_numpy()
        assert np.isfinite(expected[WARMUP:]).all() and len(got) - WARMUP >= 150, name
        np.testing.assert_allclose(got[WARMUP:], expected[WARMUP:], rtol=1e-6, atol=1e-9, err_msg=name)


def test_features_match_plain_formulas(features: pl.DataFrame) -> None:
    cols, first = _one(features)
    o, h, l, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))  # noqa: E741
    t = 300
    r = np.diff(np.log(c))
    window = slice(t - 19, t + 1)
    tp = (h + l + c) / 3
    expected = {
        "parkinson_vol_20": np.sqrt(np.mean(np.log(h[window] / l[window]) ** 2) / (4 * np.log(2))),
        "vwap_dist_20": c[t] / (np.sum(tp[window] * v[window]) / np.sum(v[window])) - 1,
        "volume_zscore_20": (v[t] - v[window].mean()) / v[window].std(ddof=1),
        "dist_high_20": c[t] / h[window].max() - 1,
        "close_location": (c[t] - l[t]) / (h[t] - l[t]),
        "gap": np.log(o[t] / c[t - 1]),
        "log_return_20": np.log(c[t] / c[t - 20]),
        "vol_ratio_5_20": r[t - 5:t].std(ddof=1) / r[t - 20:t].std(ddof=1),
    }
    x = r[t - 20:t]
    z = x - x.mean()
    expected["skew_20"] = np.mean(z ** 3) / np.mean(z ** 2) ** 1.5
    expected["kurt_20"] = np.mean(z ** 4) / np.mean(z ** 2) ** 2 - 3
    for name, value in expected.items():
        assert first[name][t] == pytest.approx(value, rel=1e-6), name


def test_every_feature_named_documented_and_finite_after_warmup(features: pl.DataFrame) -> None:
    assert 40 <= len(TECHNICAL_FEATURE_NAMES) <= 45
    assert len(set(TECHNICAL_FEATURE_NAMES)) == len(TECHNICAL_FEATURE_NAMES)
    assert all(doc for _, doc in TECHNICAL_FEATURES.values())
    after = features.group_by("ticker").tail(features.height // 3 - 60)
    bad = [n for n in TECHNICAL_FEATURE_NAMES if not np.isfinite(after[n].to_numpy()).all()]
    assert bad == []


def test_truncation_invariance(ohlcv: pl.DataFrame, features: pl.DataFrame) -> None:
    """Every feature at row t is the same when computed on the data up to t only."""
    cut = ohlcv["date"].unique().sort()[120]
    truncated = compute_technical_features(ohlcv.filter(pl.col("date") <= cut))
    full = features.filter(pl.col("date") <= cut)
    for name in TECHNICAL_FEATURE_NAMES:
        np.testing.assert_array_equal(truncated[name].to_numpy(), full[name].to_numpy(), err_msg=name)


def test_tickers_do_not_leak_into_each_other(ohlcv: pl.DataFrame, features: pl.DataFrame) -> None:
    ticker = ohlcv["ticker"].unique().sort()[1]
    alone = compute_technical_features(ohlcv.filter(pl.col("ticker") == ticker))
    mixed = features.filter(pl.col("ticker") == ticker)
    for name in TECHNICAL_FEATURE_NAMES:
        np.testing.assert_array_equal(alone[name].to_numpy(), mixed[name].to_numpy(), err_msg=name)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['volume'\]"):
        compute_technical_features(pl.DataFrame({"date": [date(2024, 1, 2)], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0]}))
    frame = pl.DataFrame({"date": [date(2024, 1, 2)] * 2, "open": [1.0] * 2, "high": [1.0] * 2, "low": [1.0] * 2, "close": [1.0] * 2, "volume": [1.0] * 2})
    with pytest.raises(ValueError, match="duplicate"):
        compute_technical_features(frame)


def test_constant_prices_give_nan_not_inf() -> None:
    n = 60
    frame = pl.DataFrame({"date": [date(2024, 1, 1) + timedelta(days=i) for i in range(n)], "open": [10.0] * n,
                          "high": [10.0] * n, "low": [10.0] * n, "close": [10.0] * n, "volume": [0.0] * n})
    out = compute_technical_features(frame)
    assert not np.isinf(out.select(TECHNICAL_FEATURE_NAMES).to_numpy()).any()


def test_time_features() -> None:
    stamps = [datetime(2024, 3, 4, 9, 30) + timedelta(minutes=37 * i) for i in range(500)]
    out = compute_time_features(pl.DataFrame({"timestamp": stamps}))
    values = out.select(TIME_FEATURE_NAMES).to_numpy()
    assert len(TIME_FEATURE_NAMES) == 10 and np.isfinite(values).all()
    assert values.min() >= -1.0 and values.max() <= 1.0
    row = out.row(0, named=True)
    assert row["hour_sin"] == pytest.approx(np.sin(2 * np.pi * 9 / 24))
    assert row["minute_of_day_cos"] == pytest.approx(np.cos(2 * np.pi * 570 / 1440))
    assert row["day_of_week_sin"] == pytest.approx(0.0)  # Monday
    daily = compute_time_features(pl.DataFrame({"date": [date(2024, 12, 31)]}))
    assert daily["month_sin"][0] == pytest.approx(np.sin(2 * np.pi * 11 / 12))

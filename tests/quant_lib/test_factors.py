"""Unit tests of the individual factors on small hand-made panels with known answers."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_lib.factors import (
    QUALITY_BOUNDS,
    QUALITY_SUBCOMPONENTS,
    ValuationParams,
    accruals_anomaly,
    analyst_revisions,
    betting_against_beta,
    dcf_value_per_share,
    ddm_value_per_share,
    idiosyncratic_volatility,
    news_sentiment_score,
    post_earnings_drift,
    quality_minus_junk,
    valuation_upside,
    volatility_scaled_momentum,
)

START = date(2020, 1, 1)


def _dates(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _price_frame(series: dict[str, np.ndarray]) -> pl.DataFrame:
    """Long prices (date, ticker, close, adj_close) from {ticker: price path}."""
    parts = []
    for ticker, path in series.items():
        parts.append(
            pl.DataFrame(
                {"date": _dates(len(path)), "ticker": ticker, "adj_close": path, "close": path},
                schema={"date": pl.Date, "ticker": pl.String, "adj_close": pl.Float64, "close": pl.Float64},
            )
        )
    return pl.concat(parts).sort("date", "ticker")


def _snapshot(rows: dict[str, dict[str, list]], n: int) -> pl.DataFrame:
    """A fundamentals snapshot with the given per-ticker columns (lists of length n)."""
    parts = []
    for ticker, cols in rows.items():
        parts.append(pl.DataFrame({"date": _dates(n), "ticker": [ticker] * n, **cols}, strict=False))
    return pl.concat(parts, how="diagonal_relaxed").sort("date", "ticker")


def _value(frame: pl.DataFrame, ticker: str, day: int, column: str) -> float | None:
    return frame.filter((pl.col("ticker") == ticker) & (pl.col("date") == START + timedelta(days=day)))[column].item()


class TestVolatilityScaledMomentum:
    def test_constant_growth_hits_the_volatility_floor(self) -> None:
        growth = 1.001
        path = 100.0 * growth ** np.arange(300)
        out = volatility_scaled_momentum(_price_frame({"AAA": path}))
        expected = (growth ** (252 - 21) - 1.0) / 0.05
        assert _value(out, "AAA", 299, "vsm") == pytest.approx(expected, rel=1e-9)
        assert _value(out, "AAA", 252, "vsm") == pytest.approx(expected, rel=1e-9)
        assert _value(out, "AAA", 251, "vsm") is None

    def test_scales_by_trailing_60_day_volatility(self) -> None:
        rng = np.random.default_rng(3)
        returns = rng.normal(0.0005, 0.02, 299)
        path = 50.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
        out = volatility_scaled_momentum(_price_frame({"BBB": path}))
        t = 280
        momentum = path[t - 21] / path[t - 252] - 1.0
        vol = np.std(returns[t - 60 : t], ddof=1) * math.sqrt(252)
        assert _value(out, "BBB", t, "vsm") == pytest.approx(momentum / max(vol, 0.05), rel=1e-9)

    def test_output_has_one_row_per_input_row(self) -> None:
        prices = _price_frame({"AAA": np.linspace(10, 20, 30), "BBB": np.linspace(20, 10, 30)})
        out = volatility_scaled_momentum(prices)
        assert out.select("date", "ticker").equals(prices.select("date", "ticker"))


class TestBettingAgainstBeta:
    def _market(self, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(11)
        bench_returns = rng.normal(0.0003, 0.01, n - 1)
        bench = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + bench_returns)])
        return bench_returns, bench

    def test_twice_the_benchmark_has_beta_two_shrunk_to_one_point_six(self) -> None:
        bench_returns, bench = self._market()
        levered = 40.0 * np.concatenate([[1.0], np.cumprod(1.0 + 2.0 * bench_returns)])
        out = betting_against_beta(_price_frame({"SPY": bench, "LEV": levered}))
        row = out.filter((pl.col("ticker") == "LEV") & (pl.col("date") == START + timedelta(days=299)))
        assert row["beta_raw"].item() == pytest.approx(2.0, abs=1e-9)
        assert row["beta"].item() == pytest.approx(0.6 * 2.0 + 0.4, abs=1e-9)
        assert row["bab"].item() == pytest.approx(-1.6, abs=1e-9)

    def test_needs_126_returns(self) -> None:
        bench_returns, bench = self._market()
        levered = 40.0 * np.concatenate([[1.0], np.cumprod(1.0 + 2.0 * bench_returns)])
        out = betting_against_beta(_price_frame({"SPY": bench, "LEV": levered}))
        assert _value(out, "LEV", 125, "beta_raw") is None
        assert _value(out, "LEV", 126, "beta_raw") == pytest.approx(2.0, abs=1e-9)

    def test_matches_numpy_over_the_252_day_window(self) -> None:
        bench_returns, bench = self._market()
        rng = np.random.default_rng(5)
        own = 0.7 * bench_returns + rng.normal(0, 0.015, bench_returns.size)
        path = 30.0 * np.concatenate([[1.0], np.cumprod(1.0 + own)])
        out = betting_against_beta(_price_frame({"SPY": bench, "XYZ": path}))
        window = slice(299 - 252, 299)
        cov = np.cov(own[window], bench_returns[window], ddof=1)
        assert _value(out, "XYZ", 299, "beta_raw") == pytest.approx(cov[0, 1] / cov[1, 1], rel=1e-9)

    def test_missing_benchmark_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="benchmark ticker 'SPY'"):
            betting_against_beta(_price_frame({"AAA": np.linspace(10, 20, 30)}))


class TestIdiosyncraticVolatility:
    def test_residual_volatility_of_a_60_day_regression(self) -> None:
        rng = np.random.default_rng(8)
        bench_returns = rng.normal(0.0, 0.01, 99)
        own = 0.002 + 1.5 * bench_returns + rng.normal(0.0, 0.012, 99)
        bench = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + bench_returns)])
        path = 10.0 * np.concatenate([[1.0], np.cumprod(1.0 + own)])
        out = idiosyncratic_volatility(_price_frame({"SPY": bench, "IDI": path}))
        x, y = bench_returns[-60:], own[-60:]
        slope, intercept = np.polyfit(x, y, 1)
        residual = y - (intercept + slope * x)
        expected = math.sqrt(residual @ residual / (60 - 2)) * math.sqrt(252)
        assert _value(out, "IDI", 99, "idio_vol") == pytest.approx(expected, rel=1e-8)
        assert _value(out, "IDI", 99, "ivol") == pytest.approx(-expected, rel=1e-8)

    def test_pure_benchmark_multiple_has_no_idiosyncratic_volatility(self) -> None:
        rng = np.random.default_rng(9)
        bench_returns = rng.normal(0.0, 0.01, 79)
        bench = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + bench_returns)])
        path = 10.0 * np.concatenate([[1.0], np.cumprod(1.0 + 0.8 * bench_returns)])
        out = idiosyncratic_volatility(_price_frame({"SPY": bench, "TWN": path}))
        assert _value(out, "TWN", 79, "idio_vol") == pytest.approx(0.0, abs=1e-6)


class TestQualityMinusJunk:
    def _frame(self) -> pl.DataFrame:
        rng = np.random.default_rng(21)
        rows = {}
        for i, ticker in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]):
            rows[ticker] = {
                "revenue": [100.0 + 10 * i, 120.0 + 5 * i],
                "gross_profit": list(rng.uniform(20, 60, 2)),
                "net_income": list(rng.uniform(-5, 20, 2)),
                "operating_cash_flow": list(rng.uniform(0, 25, 2)),
                "total_assets": list(rng.uniform(200, 400, 2)),
                "total_debt": list(rng.uniform(10, 150, 2)),
                "book_equity": list(rng.uniform(50, 150, 2)),
                "shares_outstanding": [10.0, 10.0 - 0.3 * i],
                "dividends": list(rng.uniform(0, 5, 2)),
            }
        return _snapshot(rows, 2)

    def test_matches_an_independent_z_score_computation(self) -> None:
        snap = self._frame()
        out = quality_minus_junk(snap, growth_lag=1)
        day = snap.filter(pl.col("date") == START + timedelta(days=1)).sort("ticker").to_pandas()
        prev = snap.filter(pl.col("date") == START).sort("ticker").to_pandas()

        def ratios(f: pd.DataFrame) -> dict[str, np.ndarray]:
            ta = f.total_assets.to_numpy()
            ni = f.net_income.to_numpy()
            return {
                "gpoa": f.gross_profit.to_numpy() / ta,
                "roe": ni / f.book_equity.to_numpy(),
                "roa": ni / ta,
                "cfoa": f.operating_cash_flow.to_numpy() / ta,
                "gmar": f.gross_profit.to_numpy() / f.revenue.to_numpy(),
                "low_accruals": -(ni - f.operating_cash_flow.to_numpy()) / ta,
                "low_leverage": -f.total_debt.to_numpy() / ta,
                "payout_ratio": np.where(ni > 0, f.dividends.to_numpy() / np.where(ni > 0, ni, 1.0), np.nan),
            }

        now, before = ratios(day), ratios(prev)
        raw = dict(now)
        for k in ("gpoa", "roe", "roa", "cfoa", "gmar"):
            raw[f"d_{k}"] = now[k] - before[k]
        raw["low_issuance"] = -(day.shares_outstanding.to_numpy() / prev.shares_outstanding.to_numpy() - 1.0)

        def z(name: str) -> np.ndarray:
            x = raw[name]
            if name in QUALITY_BOUNDS:
                x = np.clip(x, *QUALITY_BOUNDS[name])
            out = np.full(x.shape, np.nan)
            ok = np.isfinite(x)
            if ok.sum() < 2:
                return out
            out[ok] = (x[ok] - x[ok].mean()) / x[ok].std(ddof=1)
            return out

        components = []
        for group in QUALITY_SUBCOMPONENTS.values():
            zs = [z(s) for s in group if s in raw]
            components.append(np.nanmean(np.vstack(zs), axis=0))
        expected = np.nanmean(np.vstack(components), axis=0)
        got = out.filter(pl.col("date") == START + timedelta(days=1)).sort("ticker")["qmj"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12)

    def test_dominant_ticker_ranks_first_and_missing_inputs_stay_null(self) -> None:
        base = {
            "revenue": [100.0], "gross_profit": [30.0], "net_income": [5.0], "operating_cash_flow": [6.0],
            "total_assets": [300.0], "total_debt": [100.0], "book_equity": [100.0],
            "shares_outstanding": [10.0], "dividends": [1.0],
        }
        best = {**base, "gross_profit": [60.0], "net_income": [20.0], "operating_cash_flow": [30.0],
                "total_debt": [10.0], "dividends": [10.0]}
        empty = {k: [None] for k in base}
        snap = _snapshot({"AAA": base, "BBB": best, "CCC": {**base, "net_income": [2.0]}, "DDD": empty}, 1)
        out = quality_minus_junk(snap).sort("qmj", descending=True, nulls_last=True)
        assert out["ticker"].to_list()[0] == "BBB"
        assert out.filter(pl.col("ticker") == "DDD")["qmj"].item() is None


class TestPostEarningsDrift:
    def test_decays_with_a_20_day_half_life_and_stops_after_60(self) -> None:
        n = 100
        report = [None] * 10 + [START + timedelta(days=10)] * (n - 10)
        surprise = [None] * 10 + [0.02] * (n - 10)
        snap = _snapshot({"AAA": {"report_date": report, "earnings_surprise": surprise}}, n)
        out = post_earnings_drift(snap)
        assert _value(out, "AAA", 5, "pead") is None
        assert _value(out, "AAA", 10, "pead") == pytest.approx(0.02)
        assert _value(out, "AAA", 30, "pead") == pytest.approx(0.01)
        assert _value(out, "AAA", 50, "pead") == pytest.approx(0.005)
        assert _value(out, "AAA", 70, "pead") == pytest.approx(0.0025, rel=1e-9)
        assert _value(out, "AAA", 71, "pead") == 0.0
        assert _value(out, "AAA", 71, "days_since_report") == 61

    def test_days_are_trading_days_of_the_input(self) -> None:
        days = [START + timedelta(days=7 * i) for i in range(5)]
        snap = pl.DataFrame(
            {"date": days, "ticker": "AAA", "report_date": [START] * 5, "earnings_surprise": [0.04] * 5},
            schema_overrides={"report_date": pl.Date},
        )
        out = post_earnings_drift(snap)
        assert out["days_since_report"].to_list() == [0, 1, 2, 3, 4]
        assert out["pead"][2] == pytest.approx(0.04 * 0.5 ** (2 / 20))

    def test_surprise_rebuilt_from_eps_and_the_report_day_close(self) -> None:
        n = 20
        snap = _snapshot(
            {
                "AAA": {
                    "report_date": [START + timedelta(days=5)] * n,
                    "eps_actual": [1.1] * n,
                    "eps_estimate": [1.0] * n,
                }
            },
            n,
        )
        prices = _price_frame({"AAA": np.linspace(45.0, 64.0, n)})
        out = post_earnings_drift(snap, prices)
        assert _value(out, "AAA", 5, "pead") == pytest.approx(0.1 / 50.0)


def test_accruals_is_minus_noncash_earnings_over_assets() -> None:
    snap = _snapshot(
        {"AAA": {"net_income": [10.0], "operating_cash_flow": [4.0], "total_assets": [200.0]},
         "BBB": {"net_income": [10.0], "operating_cash_flow": [4.0], "total_assets": [0.0]}},
        1,
    )
    out = accruals_anomaly(snap)
    assert _value(out, "AAA", 0, "accruals") == pytest.approx(-0.03)
    assert _value(out, "BBB", 0, "accruals") is None


def test_revisions_is_the_21_day_consensus_change_over_price() -> None:
    n = 40
    consensus = [1.0] * 10 + [1.2] * (n - 10)
    snap = _snapshot({"AAA": {"consensus_eps": consensus}}, n)
    prices = _price_frame({"AAA": np.full(n, 50.0)})
    out = analyst_revisions(snap, prices)
    assert _value(out, "AAA", 25, "revisions") == pytest.approx(0.2 / 50.0)
    assert _value(out, "AAA", 35, "revisions") == pytest.approx(0.0)
    assert _value(out, "AAA", 20, "revisions") is None
    no_prices = analyst_revisions(snap)
    assert _value(no_prices, "AAA", 25, "revisions") == pytest.approx(0.2)


def test_sentiment_is_a_span_10_ewma_like_pandas() -> None:
    rng = np.random.default_rng(4)
    scores = np.tanh(rng.normal(size=50))
    snap = _snapshot({"AAA": {"news_sentiment": list(scores)}}, 50)
    out = news_sentiment_score(snap)
    expected = pd.Series(scores).ewm(span=10, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(out["sentiment"].to_numpy(), expected, rtol=1e-12)


class TestValuation:
    def test_dcf_matches_the_explicit_sum(self) -> None:
        cf, g, r, gt = 10.0, 0.05, 0.10, 0.02
        explicit = sum(cf * 1.05**t / 1.10**t for t in range(1, 6))
        terminal = cf * 1.05**5 * 1.02 / (0.10 - 0.02) / 1.10**5
        assert dcf_value_per_share(cf, g, r, gt, 5) == pytest.approx(explicit + terminal, rel=1e-12)
        assert dcf_value_per_share(cf, 0.02, r, gt, 5) == pytest.approx(cf * 1.02 / 0.08, rel=1e-12)

    def test_ddm_is_gordon_growth(self) -> None:
        assert ddm_value_per_share(2.0, 0.08, 0.02) == pytest.approx(34.0)

    def test_upside_from_fundamentals_and_price(self) -> None:
        n = 5
        snap = _snapshot(
            {"AAA": {"operating_cash_flow": [2.5] * n, "shares_outstanding": [1.0] * n, "revenue": [100.0] * n,
                     "dividends": [0.5] * n}},
            n,
        )
        prices = _price_frame({"AAA": np.full(n, 100.0)})
        p = ValuationParams()
        out = valuation_upside(snap, prices, benchmark_ticker=None)
        cost = p.risk_free + 1.0 * p.equity_risk_premium
        value = dcf_value_per_share(10.0, p.default_growth, cost, p.terminal_growth, p.years)
        assert _value(out, "AAA", 4, "intrinsic_value") == pytest.approx(value, rel=1e-12)
        assert _value(out, "AAA", 4, "upside") == pytest.approx(value / 100.0 - 1.0, rel=1e-12)
        ddm = ddm_value_per_share(2.0, cost, p.terminal_growth)
        assert _value(out, "AAA", 4, "upside_ddm") == pytest.approx(ddm / 100.0 - 1.0, rel=1e-12)

    def test_upside_is_clipped(self) -> None:
        snap = _snapshot({"AAA": {"operating_cash_flow": [250.0], "shares_outstanding": [1.0]},
                          "BBB": {"operating_cash_flow": [-5.0], "shares_outstanding": [1.0]}}, 1)
        prices = _price_frame({"AAA": np.full(1, 10.0), "BBB": np.full(1, 10.0)})
        out = valuation_upside(snap, prices, benchmark_ticker=None)
        assert _value(out, "AAA", 0, "upside") == 3.0
        assert _value(out, "BBB", 0, "upside") == -1.0


def test_bad_prices_are_rejected_with_the_offending_rows() -> None:
    prices = _price_frame({"AAA": np.array([10.0, -1.0, 12.0])})
    with pytest.raises(ValueError, match="non-positive"):
        volatility_scaled_momentum(prices)
    dup = pl.concat([_price_frame({"AAA": np.array([10.0, 11.0])})] * 2)
    with pytest.raises(ValueError, match="duplicate"):
        volatility_scaled_momentum(dup)
    with pytest.raises(ValueError, match="adj_close"):
        volatility_scaled_momentum(pl.DataFrame({"date": [START], "ticker": ["AAA"]}))

"""Embedded simulated equity market: the default offline data source and the test bed.

`simulate_market(config, end)` returns a universe, daily OHLCV prices, point-in-time fundamental
facts and the ground truth that generated them. The generator always simulates the fixed horizon
`config.start .. config.horizon_end` and then slices, so the data for a date never changes with
`end`; within the horizon, a quantity for day t is built only from random draws and states up to
t, and a fact only from information up to its `available_at` (except `consensus_eps`, which is a
noisy forecast of the coming EPS by design). Same config -> same bytes.
The full-horizon simulation is cached per config (`functools.lru_cache`).

Stages (`_simulate_full` composes them; each reads only what earlier stages returned and draws
only from its own random streams, so a stage can be read, changed and tested alone):
calendar and regime path (`_calendar_and_regime`) -> tickers, listings, vol change points
(`_draw_tickers`, `_listings`, `_vol_change_points`) -> idiosyncratic vol, latent characteristics,
earnings events (`_idiosyncratic_vol`, `_latent_characteristics`, `_earnings_events`) -> ticker
returns (`_ticker_returns`) -> fundamentals, dividends and analyst revisions
(`_fundamentals_and_dividends`, `_analyst_revisions`) -> OHLCV (`_constituent_ohlcv`,
`_benchmark_ohlcv`) -> frames and ground truth (`_market_frames`, `_ground_truth`); the planted
structures have their own stages (`_planted_structures`, `_news_sentiment`, `_planted_drift`,
`_market_break_paths`, `_with_other_asset_classes`). Intraday bars are the last stage, run on
demand for the (ticker, day) cells asked for: `quant_lib.data.intraday.simulate_intraday` (exact
against these daily bars).

Model (defaults of `SimulationConfig` in brackets; returns are daily log returns)
---------------------------------------------------------------------------------
Calendar: the sessions of `calendar` [XNYS] (`quant_lib.data.calendar`: no bars on NYSE holidays,
half days are ordinary daily bars), [2005-01-03 .. 2035-12-31], 7,793 days. Every random
component has its own stream spawned from `np.random.SeedSequence(seed)`.

Regime: a 2-state Markov chain s_t (0 = calm bull, 1 = volatile bear), sampled as alternating
geometric sojourns with expected durations [300] and [80] trading days (transition
probabilities 1/300 and 1/80; stationary bear share ~21%); the first state is drawn from the
stationary law.

Market factor: m_t = mu[s_t] + sigma[s_t] * exp(h_t - v_h) * z_t with mu = [+0.0007, -0.0018]
(~ +18% / -45% a year; ~ +4.4% a year on average), sigma = [0.008, 0.018] (~13% / 29% a year,
bear/bull = 2.25), h_t a log-volatility AR(1) (persistence [0.97], stationary sd [0.25];
exp(h - v_h) has unit mean square) for volatility clustering within a regime, and z_t a
standardized Student-t (df [5], unit variance) for fat tails.

Sectors: [11] GICS-named sectors; sector factors f_k,t = sector_vol * sqrt(sigma[s_t] /
sigma[0]) * (L z)_k with equicorrelation [0.3] between sectors (L its Cholesky factor),
sector_vol [0.006] (~9.5% a year in the bull state), Student-t(5) innovations. A ticker loads
on its sector with gamma_i ~ U(0.6, 1.4).

Tickers: [100] constituents named "AAA", "AAB", ... (skipping the benchmark symbol) with a
name like "Aab Technologies Corp"; sectors assigned round-robin then shuffled. True market betas
beta_i = clip(sector mean beta (Utilities 0.60 .. Information Technology 1.25) + N(0, [0.18]),
0.45, 1.70): mean ~1, cross-sectional sd ~0.25.

Returns: g_i,t = alpha_i,t + beta_i m_t + gamma_i f_sector(i),t + idio_i,t eps_i,t + jump_i,t
(daily log total return). eps is a standardized Student-t(df [5]); idio_i,t = base_i * cp_i,t *
regime multiplier ([1.0] bull, [1.3] bear) * exp(x_i,t - v_x) with base_i = [0.011] *
exp(N(0, 0.3)) (~17% a year), x_i,t a per-ticker log-volatility AR(1) (persistence [0.98],
stationary sd [0.3]; vectorized across tickers with `scipy.signal.lfilter`). Realized with the
defaults: stock vol ~31% a year, excess kurtosis of daily returns ~9, benchmark vol ~14% (bull)
and ~31% (bear) a year.

Change points: [20%] of tickers get one idiosyncratic volatility change point at a random day
at least 252 days inside their listed life, by a factor f ~ U(2, 3) up (70%) or down (30%),
centred on the ticker's base vol (before = base / sqrt(f), after = base * sqrt(f)).
`truth.change_points`: ticker, date (first day at the new level), vol_before, vol_after (daily
idiosyncratic vol before the log-vol, regime and fat-tail noise).

Planted premia: alpha_i,t = sum_k premium_k * c_k,i,t-1 uses characteristics at t-1 only
(`truth.characteristics.alpha`). Characteristics are generated in cross-sectional z units
(stationary, unit variance), so a premium is the daily expected return per 1 z:
- momentum [0.0003/day]: `momentum_drift`, a latent AR(1) (half-life [750] trading days), so past
  12-1 month returns carry its accumulated drift and predict returns;
- low_beta [0.00012/day]: `low_beta` = -(beta - mean beta) / sd beta over the constituents
  (betting against beta: alpha falls by ~0.0005/day per unit of beta, more than the average
  market premium, so the security market line is flat to inverted);
- quality [0.00015/day]: `quality` = sqrt(0.6) q0_i + sqrt(0.4) AR(1) (half-life [500] days), the
  latent behind margins, asset turnover, leverage, accruals, special charges, buybacks, payout;
- pead [0.0006/day per surprise sd]: `pead_drift` = sum over reports of e * exp(-age / [20]),
  e the report's standardized earnings surprise (Student-t(5)) and age the trading days since
  it (0 on the report day, so the drift starts the next day; ~1.2% cumulative drift per
  surprise sd, 95% of it within 60 days);
- sentiment [0.00025/day]: `sentiment_latent`, a latent AR(1) (half-life [10] days) whose
  innovations correlate 0.3 with the same day's idiosyncratic shock.
The report day carries the announcement reaction jump = [2.5] * idio_i,t * e (in the overnight
gap). Mean daily rank IC vs next-20-day beta-neutral returns (defaults, 2005-2035): latent
momentum 0.085, low_beta 0.029, quality 0.038, pead 0.040, sentiment 0.034; what a researcher
can build from the data: 12-1 momentum 0.021, -rolling 252-day beta 0.027, ROE 0.030, latest
earnings_surprise (<= 30 days old) 0.046, news_sentiment 0.024 (t-stats 3.5 to 7.6).

Survivorship with a stable universe: [n_tickers] constituents list on the first day;
round([15%] * n_tickers) of them delist (chosen with weights exp(-0.7 q0), so delisted names skew
to low quality) on a day uniform between day 504 and one year before the horizon end, and each
delisting is replaced by a new listing (the next symbol in sequence, IPO price 40 * exp(N(0, 0.5)))
on the next trading day: exactly n_tickers constituents are listed every day (the universe holds
n_tickers * 1.15 symbols over the horizon). The delisted keep their history: prices,
characteristics, news and facts exist only while listed; `delisted_date` is the last trading day.

Planted structures (for the learning layers' tests; each exposed in `GroundTruth`):
- Meta-label structure (`truth.meta_label`): the daily log return carries a drift
  [0.06] * base_i * sign(news_sentiment_i,t-1) (base_i the ticker's base idiosyncratic vol, so
  ~0.00066/day at the median). A momentum bet (side = sign of the trailing 20-day return) whose
  side agrees with the sign of the latest news_sentiment, known at the bet's start, drifts in its
  favour; one that disagrees drifts against it. Measured (n_tickers 60, seed 7, 2005-2035, bets
  every 5th day, barriers +-2 sigma_20 sqrt(10), 10 days, touched barriers only): the profit-taking
  barrier comes first in 59% of agreeing bets and 48% of disagreeing ones; a logistic model of
  side * news_sentiment has out-of-sample AUC > 0.55, one of noise ~0.5. This drift is not part of
  `characteristics.alpha` (the factor premia).
- Predictable tickers (`truth.predictable`: ticker, kind "ar1_idio", strength phi): in
  round([10%] * symbols) tickers the idiosyncratic return follows u_t = phi u_t-1 +
  sqrt(1 - phi^2) idio_t eps_t with phi [0.25] (same variance as before), none in the others: an
  AR(1) fitted on beta-neutral residual returns cuts the out-of-sample squared error of the
  zero (random-walk) forecast by ~phi^2 * idio share (> 2%) in planted tickers, ~0 elsewhere.
- Drift change points (`truth.drift_change_points`: ticker, date, drift_before, drift_after):
  [10%] of tickers get one idiosyncratic drift break at least 252 days inside their listed life:
  the daily drift moves from -d/2 to +d/2 times a random sign, d ~ U([0.0015, 0.0025]) (~38-63% a
  year in total).
- Market change points (`truth.market_change_points`: date, kind, before, after), from
  `market_breaks` [2016-01-04 drift +0.0008/day, 2018-01-02 drift back to 0, 2020-01-02 market
  vol x1.5, 2022-01-03 back to x1]: added to the market factor's drift / multiplying its vol on
  top of the regime (the regime path and its parameters are unchanged).
- Vol change points: `truth.change_points` (above).

Other asset classes (opt-in, `n_crypto` [0] <= 6 and `n_fx` [0] <= 6; settings SIM_CRYPTO, SIM_FX):
crypto symbols (BTC-USD, ETH-USD, ...; asset_class "crypto", sector "Crypto") trade every
calendar day: g = 0.0005 + b_i c_t + 0.02 eps, c a common factor with vol 0.03 * exp(h_t - v_h)
(log-vol AR(1), persistence 0.97, sd 0.3), b_i ~ U(0.8, 1.3): ~4% a day. FX pairs (EURUSD=X, ...;
"fx", sector "FX") trade every weekday (holidays included): g = 0.006 eps (~9.5% a year), no drift,
volume 0. Open = previous close * exp(0.05 sigma N(0, 1)) (no overnight gap in a 24-hour market);
high/low as for equities. They have no facts and are not in the benchmark.

Prices: close = P0_i * G_i,t * K_i,t, where G = exp(cumulative g since the listing day) is the
total-return index and K the product of (1 - dividend per share / pre-dividend close) over past
ex-dividend days (ex-date = 10 trading days after the report that declared it). `adj_close` =
P0_i * G_i,t is a *forward-adjusted* total-return index equal to close on the first day, so past
values never change when later dividends arrive (a back-adjusted series would). Overnight gap =
0.25 * (g - jump) + 0.2 * sigma_i,t * N(0, 1) + jump + log dividend drop; open = close_{t-1} *
exp(gap); high = max(open, close) * (1 + 0.5 sigma E1), low = min(open, close) / (1 + 0.5 sigma
E2), E exponential(1) and sigma_i,t the ticker's total daily vol: a valid bar, every price > 0.
Volume (shares) = shares0_i * turnover_i (0.4% * exp(N(0, 0.4))) * (1 + 1.5 |shock| / sigma_i,t)
* exp(liquidity + 0.3 * bear), liquidity an AR(1) (persistence 0.9, sd 0.4), rounded to whole
shares: log-normal and rising with |return|.

Benchmark [SPY]: an equal-weighted, daily rebalanced index of the constituents listed on the
previous and current day: r_t = mean_i(exp(g_i,t) - 1) + N(0, [0.0002]) tracking noise, level
100 on the first day, modelled as an accumulating (total-return) fund, so close == adj_close.
Its universe row has is_benchmark=True, sector "Benchmark", asset_class "etf".

Fundamentals (facts, one row per ticker, metric, available_at): calendar quarter ends from the
listing on; `available_at` = period_end + lag, lag = clip(per-ticker U(25, 50) - 5 q0 + N(0, 3),
20, 57) days rolled forward to a session (so 20..60 days). Values are built in units of a
smoothed market cap (P0 * shares * EMA(G, half-life 126 days) at period_end * K), so valuation
ratios stay stationary and fundamentals follow prices with a lag (information up to period_end):
revenue = cap * sector sales-to-cap (0.30..1.00 a year) * exp(N(0, 0.35) - 0.25 q + AR(1) noise)
* seasonality / 4; gross margin = sector margin + 0.08 q; EBITDA margin = sector margin + 0.06 q
+ N(0, 0.035); assets = 4 revenue / (sector turnover * exp(N(0, 0.2))) * exp(-0.1 q);
debt/assets = logistic(sector base + N(0, 0.4) - 0.45 q); D&A 3%/yr of assets; interest 4.5%/yr
of debt; special charges (probability 4% * (1 - 0.5 tanh q) a quarter, 10-40% of revenue); tax
21% of positive EBT; book equity = assets * (1 - debt ratio - 0.15); operating cash flow = net
income + D&A + charges + revenue * (0.01 q + noise); shares drift by -0.3% q + N(0, 1%) a
quarter; dividends = payout * max(net income, 0), ~25% of tickers (skewed to low quality) pay
none. Defaults give median P/E ~13, P/B ~2, dividend yield ~2.2%, ROE ~14%, ~6% loss quarters.
Earnings facts at the report: eps_actual = net_income / shares; earnings_surprise =
(eps_actual - eps_estimate) / close the day before = s_i * e with s_i = 0.003 * exp(N(0, 0.3));
eps_estimate = the last `consensus_eps` revision before the report.
Analyst revisions: 1 + Poisson(2.5) `consensus_eps` facts per quarter on distinct random days
between the previous and this report; the consensus moves linearly (plus noise) from the initial
forecast to eps_estimate, and the total revision is 0.004 * exp(N(0, 0.3)) * price * (0.5 e +
sqrt(0.75) N(0, 1)), so revisions are correlated with the coming surprise. Their `period_end`
equals `available_at` (the revision date), not the upcoming quarter end: the facts schema
requires available_at >= period_end, which a forecast made before its quarter ends would break.
`news_sentiment`: every listed day, tanh(0.6 * (sentiment_latent + 0.8 N(0, 1))) in (-1, 1),
period_end = available_at = the date (corr with the latent ~0.76).

Speed and memory (one core): 100 tickers x 31 years ~0.7 s, 500 tickers ~5 s CPU and ~1.5 GB
peak; the cache keeps the last 2 configs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from scipy.signal import lfilter

from quant_lib.data.calendar import trading_days_array
from quant_lib.data.schemas import (
    FUNDAMENTAL_FACT_COLUMNS,
    FUNDAMENTAL_METRICS,
    PRICE_COLUMNS,
    QUARTERLY_METRICS,
    UNIVERSE_COLUMNS,
)

__all__ = [
    "GroundTruth",
    "PREMIUM_CHARACTERISTICS",
    "SECTOR_NAMES",
    "SimulatedMarket",
    "SimulationConfig",
    "simulate_market",
]

SECTOR_NAMES: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)

# Per sector: name word, mean beta, gross margin, EBITDA margin, asset turnover (revenue/assets a
# year), sales-to-cap (revenue/market cap a year), debt/assets.
_SECTOR_PROFILES: tuple[tuple[str, float, float, float, float, float, float], ...] = (
    ("Media", 1.00, 0.55, 0.30, 0.50, 0.45, 0.30),
    ("Retail", 1.15, 0.38, 0.14, 1.10, 0.90, 0.25),
    ("Foods", 0.70, 0.35, 0.17, 1.00, 0.70, 0.25),
    ("Energy", 1.10, 0.30, 0.22, 0.70, 1.00, 0.25),
    ("Financial", 1.10, 0.60, 0.35, 0.30, 0.50, 0.45),
    ("Health", 0.85, 0.58, 0.22, 0.60, 0.50, 0.20),
    ("Industries", 1.05, 0.32, 0.16, 0.80, 0.70, 0.25),
    ("Technologies", 1.25, 0.62, 0.28, 0.60, 0.30, 0.15),
    ("Materials", 1.10, 0.28, 0.18, 0.70, 0.80, 0.25),
    ("Realty", 0.90, 0.60, 0.55, 0.20, 0.35, 0.45),
    ("Power", 0.60, 0.40, 0.35, 0.30, 0.60, 0.40),
)
_BETA, _GROSS_MARGIN, _EBITDA_MARGIN, _TURNOVER, _SALES_TO_CAP, _DEBT_RATIO = range(6)
_NAME_SUFFIXES = ("Inc", "Corp", "Holdings", "Group", "Co", "Ltd")

PREMIUM_CHARACTERISTICS: dict[str, str] = {
    "momentum": "momentum_drift",
    "low_beta": "low_beta",
    "quality": "quality",
    "pead": "pead_drift",
    "sentiment": "sentiment_latent",
}
"""Premium name in `GroundTruth.premia` -> the `GroundTruth.characteristics` column it pays on."""

CRYPTO_SYMBOLS: tuple[str, ...] = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD", "DOGE-USD")
FX_SYMBOLS: tuple[str, ...] = ("EURUSD=X", "USDJPY=X", "GBPUSD=X", "AUDUSD=X", "USDCHF=X", "USDCAD=X")
PREDICTABLE_COLUMNS = {"ticker": pl.String, "kind": pl.String, "strength": pl.Float64}
DRIFT_CHANGE_COLUMNS = {"ticker": pl.String, "date": pl.Date, "drift_before": pl.Float64, "drift_after": pl.Float64}
MARKET_CHANGE_COLUMNS = {"date": pl.Date, "kind": pl.String, "before": pl.Float64, "after": pl.Float64}

_CHARACTERISTIC_COLUMNS = ("momentum_drift", "low_beta", "quality", "pead_drift", "sentiment_latent", "beta", "alpha")
_EX_DIVIDEND_DELAY = 10
_OTHER_LIABILITIES_RATIO = 0.15


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the simulated market; every default is documented in the module docstring."""

    n_tickers: int = 100
    seed: int = 42
    start: date = date(2005, 1, 3)
    horizon_end: date = date(2035, 12, 31)
    benchmark_ticker: str = "SPY"
    calendar: str = "XNYS"
    n_sectors: int = 11
    # regime and market factor
    bull_drift: float = 0.0007
    bear_drift: float = -0.0018
    bull_vol: float = 0.008
    bear_vol: float = 0.018
    bull_expected_duration: float = 300.0
    bear_expected_duration: float = 80.0
    market_log_vol_persistence: float = 0.97
    market_log_vol_sd: float = 0.25
    # cross-section
    sector_vol: float = 0.006
    sector_correlation: float = 0.3
    beta_dispersion: float = 0.18
    idio_vol_median: float = 0.011
    idio_log_vol_persistence: float = 0.98
    idio_log_vol_sd: float = 0.3
    bear_idio_vol_multiplier: float = 1.3
    student_t_df: float = 5.0
    # planted premia (daily expected return per 1 z of the characteristic)
    momentum_premium: float = 0.0003
    low_beta_premium: float = 0.00012
    quality_premium: float = 0.00015
    pead_premium: float = 0.0006
    sentiment_premium: float = 0.00025
    momentum_half_life: float = 750.0
    quality_half_life: float = 500.0
    sentiment_half_life: float = 10.0
    pead_decay_days: float = 20.0
    earnings_reaction: float = 2.5
    # survivorship (stable universe: each delisting is replaced by a new listing) and change points
    delisting_fraction: float = 0.15
    change_point_fraction: float = 0.2
    benchmark_tracking_vol: float = 0.0002
    # planted structures for the learning layers (module docstring, "Planted structures")
    meta_label_strength: float = 0.06
    predictable_fraction: float = 0.1
    predictable_phi: float = 0.25
    drift_change_fraction: float = 0.1
    drift_change_size: tuple[float, float] = (0.0015, 0.0025)
    market_breaks: tuple[tuple[date, str, float], ...] = (
        (date(2016, 1, 4), "drift", 0.0008),
        (date(2018, 1, 2), "drift", -0.0008),
        (date(2020, 1, 2), "vol", 1.5),
        (date(2022, 1, 3), "vol", 1.0 / 1.5),
    )
    # other asset classes (opt-in): crypto trades every calendar day, FX every weekday
    n_crypto: int = 0
    n_fx: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.n_tickers, int) or self.n_tickers < 1:
            problems.append(f"n_tickers must be a positive int, got {self.n_tickers!r}")
        elif self.n_tickers > 26**3 - 1:
            problems.append(f"n_tickers must be at most {26**3 - 1} (three-letter symbols), got {self.n_tickers}")
        if not isinstance(self.n_sectors, int) or self.n_sectors < 1:
            problems.append(f"n_sectors must be a positive int, got {self.n_sectors!r}")
        if not isinstance(self.start, date) or not isinstance(self.horizon_end, date):
            problems.append("start and horizon_end must be datetime.date")
        elif (self.horizon_end - self.start).days < 5 * 365:
            problems.append(f"horizon {self.start}..{self.horizon_end} must span at least 5 years")
        if not self.benchmark_ticker or self.benchmark_ticker != self.benchmark_ticker.upper():
            problems.append(f"benchmark_ticker must be a non-empty upper-case symbol, got {self.benchmark_ticker!r}")
        for name in ("delisting_fraction", "change_point_fraction", "predictable_fraction", "drift_change_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("bull_vol", "bear_vol", "sector_vol", "idio_vol_median", "bull_expected_duration",
                     "bear_expected_duration", "momentum_half_life", "quality_half_life",
                     "sentiment_half_life", "pead_decay_days"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.student_t_df > 2:
            problems.append(f"student_t_df must be > 2 (finite variance), got {self.student_t_df}")
        if not 0.0 <= self.sector_correlation < 1.0:
            problems.append(f"sector_correlation must be in [0, 1), got {self.sector_correlation}")
        for name in ("market_log_vol_persistence", "idio_log_vol_persistence"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        problems += self._planted_problems()
        if problems:
            raise ValueError("invalid SimulationConfig: " + "; ".join(problems))

    def _planted_problems(self) -> list[str]:
        problems = []
        if not 0.0 <= self.predictable_phi < 1.0:
            problems.append(f"predictable_phi must be in [0, 1), got {self.predictable_phi}")
        if self.meta_label_strength < 0:
            problems.append(f"meta_label_strength must be >= 0, got {self.meta_label_strength}")
        if not 0 <= self.drift_change_size[0] <= self.drift_change_size[1]:
            problems.append(f"drift_change_size must be (low, high) with 0 <= low <= high, got {self.drift_change_size}")
        for when, kind, value in self.market_breaks:
            if kind not in ("vol", "drift") or not isinstance(when, date) or (kind == "vol" and not value > 0):
                problems.append(f"market_breaks entry {(when, kind, value)!r}: expected (date, 'vol' factor > 0 | 'drift' change)")
        if not 0 <= self.n_crypto <= len(CRYPTO_SYMBOLS):
            problems.append(f"n_crypto must be in [0, {len(CRYPTO_SYMBOLS)}], got {self.n_crypto}")
        if not 0 <= self.n_fx <= len(FX_SYMBOLS):
            problems.append(f"n_fx must be in [0, {len(FX_SYMBOLS)}], got {self.n_fx}")
        return problems


@dataclass(frozen=True)
class GroundTruth:
    """What generated the data, for tests and diagnostics.

    regime: date, state (0 = calm bull, 1 = volatile bear).
    betas: ticker, beta (loading on the market factor).
    change_points: ticker, date, vol_before, vol_after (daily idiosyncratic vol).
    premia: premium name -> daily expected return per 1 unit of its characteristic
        (`PREMIUM_CHARACTERISTICS` maps names to columns).
    characteristics: date, ticker, momentum_drift, low_beta, quality, pead_drift,
        sentiment_latent, beta, alpha (the planted expected return for that date, built from the
        previous day's characteristics), one row per listed constituent day.
    regime_params: state_names, drift and vol per state (market factor), transition_matrix,
        expected_duration_days, stationary_distribution, idio_vol_multiplier.
    predictable: ticker, kind ("ar1_idio"), strength (phi of the AR(1) on the ticker's
        idiosyncratic daily return); only the planted tickers, the others have none.
    drift_change_points: ticker, date (first day at the new drift), drift_before, drift_after
        (daily idiosyncratic drift).
    market_change_points: date, kind ("vol" | "drift"), before, after (market vol multiplier or
        added market drift per day).
    meta_label: feature, side_rule, sign, strength, drift_formula, description: what makes a
        momentum bet hit its profit-taking barrier before its stop (module docstring).
    """

    regime: pl.DataFrame
    betas: pl.DataFrame
    change_points: pl.DataFrame
    premia: dict[str, float]
    characteristics: pl.DataFrame
    regime_params: dict = field(default_factory=dict)
    predictable: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PREDICTABLE_COLUMNS))
    drift_change_points: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DRIFT_CHANGE_COLUMNS))
    market_change_points: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MARKET_CHANGE_COLUMNS))
    meta_label: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SimulatedMarket:
    """Universe, prices, fundamental facts (canonical layouts of `schemas.py`) and the truth."""

    universe: pl.DataFrame
    prices: pl.DataFrame
    fundamentals: pl.DataFrame
    truth: GroundTruth


def simulate_market(config: SimulationConfig = SimulationConfig(), end: date | None = None) -> SimulatedMarket:
    """Simulate the market of `config`; with `end`, cut everything at `end`.

    Deterministic: same config -> same bytes. The horizon `config.start .. config.horizon_end` is
    always simulated in full (and cached), then sliced: prices, regime and characteristics by
    date, facts by `available_at`, change points by date; the universe keeps tickers listed by
    `end` and blanks delisting dates after `end` (not yet known then).
    """
    if not isinstance(config, SimulationConfig):
        raise ValueError(f"config must be a SimulationConfig, got {type(config)!r}")
    full = _simulate_full(config)
    if end is None:
        return full
    if not isinstance(end, date):
        raise ValueError(f"end must be a datetime.date, got {type(end)!r}")
    if end > config.horizon_end:
        raise ValueError(
            f"end {end} is after the simulation horizon {config.horizon_end}; raise SimulationConfig.horizon_end"
        )
    return _slice_market(full, end)


def _slice_market(full: SimulatedMarket, end: date) -> SimulatedMarket:
    universe = full.universe.filter(pl.col("listed_date") <= end).with_columns(
        pl.when(pl.col("delisted_date") <= end).then(pl.col("delisted_date")).otherwise(None).alias("delisted_date")
    )
    listed = universe.select("ticker")
    truth = full.truth
    return SimulatedMarket(
        universe=universe,
        prices=full.prices.filter(pl.col("date") <= end),
        fundamentals=full.fundamentals.filter(pl.col("available_at") <= end),
        truth=GroundTruth(
            regime=truth.regime.filter(pl.col("date") <= end),
            betas=truth.betas.join(listed, on="ticker", how="semi", maintain_order="left"),
            change_points=truth.change_points.filter(pl.col("date") <= end),
            premia=dict(truth.premia),
            characteristics=truth.characteristics.filter(pl.col("date") <= end),
            regime_params=dict(truth.regime_params),
            predictable=truth.predictable.join(listed, on="ticker", how="semi", maintain_order="left"),
            drift_change_points=truth.drift_change_points.filter(pl.col("date") <= end),
            market_change_points=truth.market_change_points.filter(pl.col("date") <= end),
            meta_label=dict(truth.meta_label),
        ),
    )


# --------------------------------------------------------------------------------------------
# helpers


def _half_life_persistence(half_life: float) -> float:
    return math.exp(-math.log(2.0) / half_life)


def _standard_t(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=size) / math.sqrt(df / (df - 2.0))


def _ar1(rng: np.random.Generator, phi: float, sd: float, shape: tuple[int, ...], innovations=None) -> np.ndarray:
    """Stationary AR(1) x_t = phi x_{t-1} + u_t along axis 0 with marginal sd `sd`.

    `innovations` (unit variance) replace the default N(0, 1) draws. Vectorized over the other
    axes with `scipy.signal.lfilter`; the initial state is drawn from the stationary law.
    """
    unit = rng.standard_normal(shape) if innovations is None else innovations
    u = unit * (sd * math.sqrt(1.0 - phi * phi))
    x0 = rng.standard_normal(shape[1:]) * sd
    zi = (phi * x0)[np.newaxis, ...]
    out, _ = lfilter([1.0], [1.0, -phi], u, axis=0, zi=zi)
    return out


def _ticker_symbols(n: int, exclude: str) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    symbols = []
    k = 0
    while len(symbols) < n:
        symbol = letters[k // 676] + letters[(k // 26) % 26] + letters[k % 26]
        if symbol != exclude:
            symbols.append(symbol)
        k += 1
    return symbols


def _regime_path(rng: np.random.Generator, n_days: int, leave: np.ndarray, stationary: np.ndarray) -> np.ndarray:
    """Markov chain path from alternating geometric sojourns (vectorized, no day loop)."""
    first = int(rng.random() < stationary[1])
    n_segments = int(2 * n_days * leave.max()) + 16
    states = (first + np.arange(n_segments)) % 2
    durations = rng.geometric(leave[states])
    while durations.sum() < n_days:
        more_states = (states[-1] + 1 + np.arange(n_segments)) % 2
        states = np.concatenate([states, more_states])
        durations = np.concatenate([durations, rng.geometric(leave[more_states])])
    return np.repeat(states, durations)[:n_days].astype(np.int32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _quarter_ends(start: date, end: date) -> np.ndarray:
    months = np.arange(np.datetime64(start, "M"), np.datetime64(end, "M") + 1)
    month_of_year = months.astype(np.int64) % 12
    quarter_end_months = months[np.isin(month_of_year, (2, 5, 8, 11))]
    ends = (quarter_end_months + 1).astype("datetime64[D]") - 1
    return ends[(ends >= np.datetime64(start, "D")) & (ends <= np.datetime64(end, "D"))]


def _date_series(name: str, days: np.ndarray) -> pl.Series:
    return pl.Series(name, days.astype(np.int32)).cast(pl.Date)


# --------------------------------------------------------------------------------------------
# the generator: numpy over (day x ticker) matrices, built in place where it saves memory traffic

_STREAMS = (
    "regime", "market", "sectors", "tickers", "listing", "change_points", "idio_vol", "idio_shock",
    "latents", "earnings", "fundamentals", "revisions", "news", "ohlc", "volume", "benchmark",
    "planted", "crypto", "fx",
)


@dataclass
class _Tickers:
    """Static per-ticker draws (stage `_draw_tickers`) plus listings and vol change points."""

    symbols: list[str]
    names: list[str]
    sector_of: np.ndarray
    beta: np.ndarray
    sector_loading: np.ndarray
    idio_base: np.ndarray
    quality_static: np.ndarray
    ipo_price: np.ndarray
    shares_initial: np.ndarray
    turnover: np.ndarray
    listing_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    delisted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    cp_tickers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cp_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cp_factor: np.ndarray = field(default_factory=lambda: np.zeros(0))
    listed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))


@dataclass
class _MarketPath:
    """Stage 1: the trading calendar, the regime path, the market and sector factors."""

    day_int: np.ndarray
    regime: np.ndarray
    leave: np.ndarray
    stationary: np.ndarray
    drift: np.ndarray
    vol: np.ndarray
    market_vol: np.ndarray
    market: np.ndarray
    sector_names: list[str]
    sector_words: list[str]
    profile: np.ndarray
    sector_vol_t: np.ndarray
    sector_factors: np.ndarray

    @property
    def n_days(self) -> int:
        return len(self.day_int)


@dataclass
class _Latents:
    momentum: np.ndarray
    quality: np.ndarray
    sentiment: np.ndarray
    low_beta: np.ndarray


@dataclass
class _Earnings:
    """Quarter ends, report days, surprises and the post-earnings drift they start."""

    pe_int: np.ndarray
    pe_idx: np.ndarray
    report_idx: np.ndarray
    surprise_z: np.ndarray
    valid: np.ndarray
    q_rows: np.ndarray
    q_cols: np.ndarray
    rep_rows: np.ndarray
    rep_e: np.ndarray
    pead: np.ndarray
    jump: np.ndarray | None = None


@dataclass
class _Planted:
    """Predictable tickers (AR(1) idiosyncratic returns) and per-ticker drift breaks."""

    predictable: np.ndarray
    drift_tickers: np.ndarray
    drift_idx: np.ndarray
    drift_before: np.ndarray
    drift_after: np.ndarray


@dataclass
class _Returns:
    alpha: np.ndarray
    log_return: np.ndarray
    total_return_index: np.ndarray


@dataclass
class _Books:
    """Quarterly fundamentals, earnings facts and the dividend-adjusted closes."""

    close: np.ndarray
    adj_close: np.ndarray
    quarterly: dict[str, np.ndarray]
    eps_actual: np.ndarray
    eps_estimate: np.ndarray
    earnings_surprise: np.ndarray


@dataclass
class _Revisions:
    ticker: np.ndarray
    day_idx: np.ndarray
    value: np.ndarray


@dataclass
class _Bars:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray
    volume: np.ndarray


def _sector_table(n_sectors: int) -> tuple[list[str], list[str], np.ndarray]:
    profiles = [_SECTOR_PROFILES[k % len(_SECTOR_PROFILES)] for k in range(n_sectors)]
    names = [SECTOR_NAMES[k] if k < len(SECTOR_NAMES) else f"Sector {k + 1}" for k in range(n_sectors)]
    words = [p[0] for p in profiles]
    return names, words, np.array([p[1:] for p in profiles])


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per random component (appending a stream changes no other)."""
    streams = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(stream) for name, stream in zip(_STREAMS, streams)}


def _calendar_and_regime(config: SimulationConfig, rng: dict) -> _MarketPath:
    """Stage 1: trading days, the 2-state regime chain, the market factor and the sector factors."""
    day_int = trading_days_array(config.start, config.horizon_end, config.calendar).astype(np.int64)
    n_days, df = len(day_int), config.student_t_df
    leave = np.array([1.0 / config.bull_expected_duration, 1.0 / config.bear_expected_duration])
    stationary = np.array([leave[1], leave[0]]) / leave.sum()
    regime = _regime_path(rng["regime"], n_days, leave, stationary)
    drift = np.array([config.bull_drift, config.bear_drift])
    vol = np.array([config.bull_vol, config.bear_vol])
    market_log_vol = _ar1(rng["market"], config.market_log_vol_persistence, config.market_log_vol_sd, (n_days,))
    vol_break, drift_break = _market_break_paths(config, day_int)
    market_vol = vol[regime] * np.exp(market_log_vol - config.market_log_vol_sd**2) * vol_break
    market = drift[regime] + drift_break + market_vol * _standard_t(rng["market"], df, n_days)
    n_sectors = config.n_sectors
    sector_names, sector_words, profile = _sector_table(n_sectors)
    rho = config.sector_correlation
    sector_corr = np.full((n_sectors, n_sectors), rho) + (1 - rho) * np.eye(n_sectors)
    sector_vol_t = config.sector_vol * np.sqrt(vol[regime] / vol[0])
    sector_factors = _standard_t(rng["sectors"], df, (n_days, n_sectors)) @ np.linalg.cholesky(sector_corr).T
    sector_factors *= sector_vol_t[:, None]
    return _MarketPath(day_int, regime, leave, stationary, drift, vol, market_vol, market, sector_names,
                       sector_words, profile, sector_vol_t, sector_factors)


def _market_break_paths(config: SimulationConfig, day_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Market vol multiplier and added market drift per day from `config.market_breaks` (cumulative:
    a "vol" break multiplies the vol from its date on, a "drift" break adds to the drift)."""
    vol_break, drift_break = np.ones(len(day_int)), np.zeros(len(day_int))
    for when, kind, value in config.market_breaks:
        after = day_int >= np.datetime64(when, "D").astype(np.int64)
        if kind == "vol":
            vol_break[after] *= value
        else:
            drift_break[after] += value
    return vol_break, drift_break


def _market_change_points(config: SimulationConfig, day_int: np.ndarray) -> pl.DataFrame:
    """`truth.market_change_points`: each break at the first trading day on or after its date."""
    vol_break, drift_break = _market_break_paths(config, day_int)
    rows = []
    for when, kind, _ in sorted(config.market_breaks, key=lambda b: b[0]):
        idx = int(np.searchsorted(day_int, np.datetime64(when, "D").astype(np.int64)))
        if 0 < idx < len(day_int):
            path = vol_break if kind == "vol" else drift_break
            rows.append((int(day_int[idx]), kind, float(path[idx - 1]), float(path[idx])))
    frame = pl.DataFrame(rows, schema={"date": pl.Int32, "kind": pl.String, "before": pl.Float64, "after": pl.Float64},
                         orient="row")
    return frame.with_columns(pl.col("date").cast(pl.Date))


def _draw_tickers(config: SimulationConfig, rng: dict, words: list[str], profile: np.ndarray) -> _Tickers:
    """Stage 2a: symbols, names, sectors, betas, loadings, base vols and sizes of the constituents
    (the n_tickers listed at the start and the replacements that list later)."""
    n = config.n_tickers + _n_replacements(config)
    r_tk = rng["tickers"]
    symbols = _ticker_symbols(n, config.benchmark_ticker)
    sector_of = r_tk.permutation(np.arange(n) % config.n_sectors)
    beta = np.clip(profile[sector_of, _BETA] + r_tk.normal(0.0, config.beta_dispersion, n), 0.45, 1.70)
    sector_loading = r_tk.uniform(0.6, 1.4, n)
    idio_base = config.idio_vol_median * np.exp(r_tk.normal(0.0, 0.3, n))
    quality_static = r_tk.standard_normal(n)
    ipo_price = 40.0 * np.exp(r_tk.normal(0.0, 0.5, n))
    shares_initial = np.exp(r_tk.normal(math.log(3e8), 0.8, n))
    turnover = 0.004 * np.exp(r_tk.normal(0.0, 0.4, n))
    suffixes = r_tk.integers(0, len(_NAME_SUFFIXES), n)
    names = [f"{t.capitalize()} {words[s]} {_NAME_SUFFIXES[x]}" for t, s, x in zip(symbols, sector_of, suffixes)]
    return _Tickers(symbols, names, sector_of, beta, sector_loading, idio_base, quality_static, ipo_price,
                    shares_initial, turnover)


def _n_replacements(config: SimulationConfig) -> int:
    return int(round(config.delisting_fraction * config.n_tickers))


def _listings(config: SimulationConfig, rng: dict, tk: _Tickers, n_days: int) -> None:
    """Stage 2b: a stable universe. The first n_tickers list on day 0; `delisting_fraction` of them
    (weights exp(-0.7 q0)) delist on a day uniform in [504, n_days - 253] and replacement j lists
    the next trading day, so exactly n_tickers are listed every day. In place on `tk`, with the
    (day x ticker) listed mask."""
    n, n_total = config.n_tickers, len(tk.symbols)
    r_ls = rng["listing"]
    listing_idx = np.zeros(n_total, dtype=np.int64)
    last_idx = np.full(n_total, n_days - 1, dtype=np.int64)
    delisted = np.zeros(n_total, dtype=bool)
    n_replace = n_total - n
    if n_replace:
        weights = np.exp(-0.7 * tk.quality_static[:n])
        chosen = r_ls.choice(n, size=n_replace, replace=False, p=weights / weights.sum())
        lo, hi = 504, n_days - 253
        last_idx[chosen] = lo + (r_ls.random(n_replace) * (hi - lo)).astype(np.int64)
        delisted[chosen] = True
        listing_idx[n:] = last_idx[chosen] + 1
    t_index = np.arange(n_days)[:, None]
    tk.listing_idx, tk.last_idx, tk.delisted = listing_idx, last_idx, delisted
    tk.listed = (t_index >= listing_idx[None, :]) & (t_index <= last_idx[None, :])


def _vol_change_points(config: SimulationConfig, rng: dict, tk: _Tickers, n_days: int) -> None:
    """Stage 2c: one idiosyncratic vol change point for a fraction of the tickers (in place on `tk`)."""
    n = len(tk.symbols)
    r_cp = rng["change_points"]
    n_cp = int(round(config.change_point_fraction * n))
    candidates = r_cp.permutation(n)[:n_cp]
    lo, hi = tk.listing_idx[candidates] + 252, tk.last_idx[candidates] - 252
    draws, up, size = r_cp.random(n_cp), r_cp.random(n_cp) < 0.7, r_cp.uniform(2.0, 3.0, n_cp)
    ok = hi > lo
    tk.cp_tickers = candidates[ok]
    tk.cp_idx = np.full(n, n_days, dtype=np.int64)
    tk.cp_factor = np.ones(n)
    tk.cp_idx[tk.cp_tickers] = lo[ok] + (draws[ok] * (hi[ok] - lo[ok])).astype(np.int64)
    tk.cp_factor[tk.cp_tickers] = np.where(up[ok], size[ok], 1.0 / size[ok])


def _idiosyncratic_vol(config: SimulationConfig, rng: dict, tk: _Tickers, path: _MarketPath) -> np.ndarray:
    """Stage 3a: idio_i,t = base_i * cp_i,t * regime multiplier * exp(x_i,t - v_x)."""
    n_days, n = path.n_days, len(tk.symbols)
    idio_vol = _ar1(rng["idio_vol"], config.idio_log_vol_persistence, config.idio_log_vol_sd, (n_days, n))
    idio_vol -= config.idio_log_vol_sd**2
    np.exp(idio_vol, out=idio_vol)
    idio_vol *= tk.idio_base
    idio_vol *= np.array([1.0, config.bear_idio_vol_multiplier])[path.regime][:, None]
    cps = tk.cp_tickers
    root_factor = np.sqrt(tk.cp_factor[cps])[None, :]
    after = np.arange(n_days)[:, None] >= tk.cp_idx[cps][None, :]
    idio_vol[:, cps] *= np.where(after, root_factor, 1.0 / root_factor)
    return idio_vol


def _latent_characteristics(config: SimulationConfig, rng: dict, tk: _Tickers, idio_shock: np.ndarray) -> _Latents:
    """Stage 3b: the latent momentum, quality and sentiment AR(1)s and the static low_beta score."""
    n_days, n = idio_shock.shape
    r_lt = rng["latents"]
    momentum = _ar1(r_lt, _half_life_persistence(config.momentum_half_life), 1.0, (n_days, n))
    quality = _ar1(r_lt, _half_life_persistence(config.quality_half_life), 1.0, (n_days, n))
    quality *= math.sqrt(0.4)
    quality += math.sqrt(0.6) * tk.quality_static
    rho_news = 0.3
    sentiment_innovation = r_lt.standard_normal((n_days, n))
    sentiment_innovation *= math.sqrt(1 - rho_news**2)
    sentiment_innovation += rho_news * idio_shock
    sentiment_phi = _half_life_persistence(config.sentiment_half_life)
    sentiment = _ar1(r_lt, sentiment_phi, 1.0, (n_days, n), sentiment_innovation)
    del sentiment_innovation
    beta = tk.beta
    low_beta = -(beta - beta.mean()) / (beta.std() if beta.std() > 0 else 1.0)
    return _Latents(momentum, quality, sentiment, low_beta)


def _planted_structures(config: SimulationConfig, rng: dict, tk: _Tickers, n_days: int) -> _Planted:
    """Stage 3c: which tickers get an AR(1) idiosyncratic return and which a drift break (and when).

    A drift break lies at least 252 days inside the listed life; the drift moves from -d/2 to
    +d/2 times a random sign, d ~ U(drift_change_size)."""
    n = len(tk.symbols)
    r_pl = rng["planted"]
    predictable = np.sort(r_pl.permutation(n)[: int(round(config.predictable_fraction * n))])
    n_dc = int(round(config.drift_change_fraction * n))
    candidates = r_pl.permutation(n)[:n_dc]
    lo, hi = tk.listing_idx[candidates] + 252, tk.last_idx[candidates] - 252
    draws, sign = r_pl.random(n_dc), np.where(r_pl.random(n_dc) < 0.5, -1.0, 1.0)
    size = r_pl.uniform(*config.drift_change_size, n_dc) * sign
    ok = hi > lo
    drift_idx = lo[ok] + (draws[ok] * (hi[ok] - lo[ok])).astype(np.int64)
    return _Planted(predictable, candidates[ok], drift_idx, -0.5 * size[ok], 0.5 * size[ok])


def _news_sentiment(rng: dict, lat: _Latents) -> np.ndarray:
    """Stage 3d: observable daily news_sentiment = tanh(0.6 (sentiment_latent + 0.8 N(0, 1)))."""
    news = rng["news"].standard_normal(lat.sentiment.shape)
    news *= 0.8
    news += lat.sentiment
    news *= 0.6
    np.tanh(news, out=news)
    return news


def _planted_drift(config: SimulationConfig, tk: _Tickers, planted: _Planted, news: np.ndarray) -> np.ndarray:
    """Meta-label drift k * base_i * sign(news_{t-1}) plus the per-ticker drift breaks."""
    drift = np.zeros_like(news)
    np.sign(news[:-1], out=drift[1:])
    drift *= config.meta_label_strength * tk.idio_base
    t_index = np.arange(news.shape[0])[:, None]
    cols = planted.drift_tickers
    drift[:, cols] += np.where(t_index >= planted.drift_idx[None, :], planted.drift_after, planted.drift_before)
    return drift


def _earnings_events(config: SimulationConfig, rng: dict, tk: _Tickers, path: _MarketPath,
                     idio_vol: np.ndarray) -> _Earnings:
    """Stage 4a: quarter ends, report days, standardized surprises, PEAD drift and report jumps."""
    n, day_int = len(tk.symbols), path.day_int
    r_er = rng["earnings"]
    quarter_ends = _quarter_ends(config.start, config.horizon_end)
    n_q = len(quarter_ends)
    pe_int = quarter_ends.astype(np.int64)
    pe_idx = np.searchsorted(day_int, pe_int, side="right") - 1
    base_lag = r_er.uniform(25.0, 50.0, n) - 5.0 * tk.quality_static
    lag = np.clip(np.round(base_lag[None, :] + r_er.normal(0.0, 3.0, (n_q, n))), 20, 57).astype(np.int64)
    report_idx = np.searchsorted(day_int, pe_int[:, None] + lag)
    surprise_z = _standard_t(r_er, config.student_t_df, (n_q, n))
    valid = (
        (report_idx < path.n_days)
        & (pe_int[:, None] >= day_int[tk.listing_idx][None, :])
        & (report_idx <= tk.last_idx[None, :])
    )
    q_rows, q_cols = np.nonzero(valid)
    rep_rows = report_idx[q_rows, q_cols]
    rep_e = surprise_z[q_rows, q_cols]
    pead = np.zeros((path.n_days, n))
    pead[rep_rows, q_cols] = rep_e
    pead = lfilter([1.0], [1.0, -math.exp(-1.0 / config.pead_decay_days)], pead, axis=0)
    jump = config.earnings_reaction * idio_vol[rep_rows, q_cols] * rep_e
    return _Earnings(pe_int, pe_idx, report_idx, surprise_z, valid, q_rows, q_cols, rep_rows, rep_e, pead, jump)


def _ticker_returns(config: SimulationConfig, path: _MarketPath, tk: _Tickers, lat: _Latents, earn: _Earnings,
                    idio_vol: np.ndarray, idio_shock: np.ndarray, planted: _Planted, news: np.ndarray) -> _Returns:
    """Stage 4b: g = alpha(t-1 characteristics) + planted drift + beta m + gamma f_sector + u + jump,
    u = idio eps, filtered to an AR(1) u_t = phi u_t-1 + sqrt(1 - phi^2) idio eps in predictable tickers.

    Consumes `idio_shock` (scaled in place by `idio_vol`).
    """
    n_days, n = idio_vol.shape
    alpha = np.empty((n_days, n))
    alpha[0] = 0.0
    np.multiply(lat.momentum[:-1], config.momentum_premium, out=alpha[1:])
    alpha[1:] += config.quality_premium * lat.quality[:-1]
    alpha[1:] += config.pead_premium * earn.pead[:-1]
    alpha[1:] += config.sentiment_premium * lat.sentiment[:-1]
    alpha[1:] += config.low_beta_premium * lat.low_beta
    log_return = np.multiply.outer(path.market, tk.beta)
    sector_part = path.sector_factors[:, tk.sector_of]
    sector_part *= tk.sector_loading
    log_return += sector_part
    del sector_part
    idio_shock *= idio_vol
    cols, phi = planted.predictable, config.predictable_phi
    if len(cols) and phi:
        idio_shock[:, cols] = lfilter([math.sqrt(1.0 - phi * phi)], [1.0, -phi], idio_shock[:, cols], axis=0)
    log_return += idio_shock
    log_return += alpha
    log_return += _planted_drift(config, tk, planted, news)
    log_return[earn.rep_rows, earn.q_cols] += earn.jump
    total_return_index = np.cumsum(log_return, axis=0)
    total_return_index -= total_return_index[tk.listing_idx, np.arange(n)]
    np.exp(total_return_index, out=total_return_index)
    return _Returns(alpha, log_return, total_return_index)


def _fundamentals_and_dividends(config: SimulationConfig, rng: dict, tk: _Tickers, path: _MarketPath,
                                lat: _Latents, earn: _Earnings, ret: _Returns) -> _Books:
    """Stage 5a: quarterly statements in units of a smoothed market cap, dividends into closes,
    earnings facts. Consumes `ret.total_return_index` (it becomes `adj_close`)."""
    n_days, n = ret.total_return_index.shape
    col = np.arange(n)[None, :]
    n_q = len(earn.pe_int)
    profile, q_pe = path.profile, lat.quality[earn.pe_idx]
    r_fd = rng["fundamentals"]
    ema_decay = _half_life_persistence(126.0)
    total_return_index = ret.total_return_index
    ema_index, _ = lfilter([1.0 - ema_decay], [1.0, -ema_decay], total_return_index, axis=0,
                           zi=(ema_decay * total_return_index[0])[None, :])
    ema_pe = ema_index[earn.pe_idx]
    del ema_index
    shares = tk.shares_initial * np.exp(np.cumsum(-0.003 * q_pe + r_fd.normal(0.0, 0.01, (n_q, n)), axis=0))
    sales_noise = _ar1(r_fd, 0.7, 0.05, (n_q, n))
    season_phase = r_fd.uniform(0, 2 * np.pi, n)
    seasonality = 1.0 + 0.04 * np.sin(2 * np.pi * (np.arange(n_q) % 4)[:, None] / 4 + season_phase[None, :])
    sales_to_cap = profile[tk.sector_of, _SALES_TO_CAP] * np.exp(r_fd.normal(0.0, 0.35, n))
    revenue = sales_to_cap * np.exp(-0.25 * q_pe + sales_noise) * seasonality / 4.0
    gross_margin = profile[tk.sector_of, _GROSS_MARGIN] + 0.08 * q_pe + r_fd.normal(0.0, 0.015, (n_q, n))
    gross_margin = np.clip(gross_margin, 0.08, 0.9)
    ebitda_margin = profile[tk.sector_of, _EBITDA_MARGIN] + 0.06 * q_pe + r_fd.normal(0.0, 0.035, (n_q, n))
    gross_profit = revenue * gross_margin
    ebitda = revenue * np.minimum(ebitda_margin, gross_margin - 0.02)
    asset_turnover = profile[tk.sector_of, _TURNOVER] * np.exp(r_fd.normal(0.0, 0.2, n))
    total_assets = 4.0 * revenue / asset_turnover * np.exp(-0.1 * q_pe)
    debt_base = profile[tk.sector_of, _DEBT_RATIO]
    debt_logit = np.log(debt_base / (1 - debt_base)) + r_fd.normal(0.0, 0.4, n)
    debt_ratio = _sigmoid(debt_logit - 0.45 * q_pe + r_fd.normal(0.0, 0.05, (n_q, n)))
    total_debt = total_assets * debt_ratio
    depreciation = 0.03 / 4.0 * total_assets
    special_charge = np.where(
        r_fd.random((n_q, n)) < 0.04 * (1.0 - 0.5 * np.tanh(q_pe)), r_fd.uniform(0.1, 0.4, (n_q, n)), 0.0
    ) * revenue
    pre_tax = ebitda - depreciation - 0.045 / 4.0 * total_debt - special_charge
    net_income = pre_tax - 0.21 * np.maximum(pre_tax, 0.0)
    accrual_noise = r_fd.standard_normal((n_q, n)) * 0.03 * (1.2 - 0.4 * np.tanh(q_pe))
    operating_cash_flow = net_income + depreciation + special_charge + revenue * (0.01 * q_pe + accrual_noise)
    book_equity = total_assets * (1.0 - debt_ratio - _OTHER_LIABILITIES_RATIO)
    pays = r_fd.random(n) >= 0.5 * _sigmoid(-tk.quality_static)
    payout = np.where(pays, _sigmoid(-0.6 + 0.5 * tk.quality_static + r_fd.normal(0.0, 0.3, n)), 0.0)
    dividends = payout * np.maximum(net_income, 0.0)

    close, adj_close, keep_before = _dividend_adjusted_closes(tk, earn, ret, dividends * ema_pe)
    cap_proxy = tk.ipo_price * shares * ema_pe * keep_before
    quarterly = {
        "revenue": revenue, "gross_profit": gross_profit, "ebitda": ebitda, "net_income": net_income,
        "operating_cash_flow": operating_cash_flow, "total_assets": total_assets, "total_debt": total_debt,
        "book_equity": book_equity, "dividends": dividends,
    }
    quarterly = {k: v * cap_proxy for k, v in quarterly.items()}
    quarterly["shares_outstanding"] = np.round(shares)
    eps_actual = quarterly["net_income"] / shares
    price_before = close[np.clip(earn.report_idx - 1, 0, n_days - 1), col]
    surprise_scale = 0.003 * np.exp(rng["earnings"].normal(0.0, 0.3, n))
    earnings_surprise = surprise_scale * earn.surprise_z
    eps_estimate = eps_actual - earnings_surprise * price_before
    return _Books(close, adj_close, quarterly, eps_actual, eps_estimate, earnings_surprise)


def _dividend_adjusted_closes(tk: _Tickers, earn: _Earnings, ret: _Returns,
                              dividend_per_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """close = P0 * G * K, adj_close = P0 * G (in place on G), and K before each quarter's ex-date."""
    n_days, n = ret.total_return_index.shape
    col = np.arange(n)[None, :]
    ex_idx = earn.report_idx + _EX_DIVIDEND_DELAY
    pays_ex = earn.valid & (ex_idx <= tk.last_idx[None, :])
    dividend_drop = np.where(
        pays_ex,
        np.clip(dividend_per_index / ret.total_return_index[np.minimum(ex_idx, n_days - 1), col], 0.0, 0.2),
        0.0,
    )
    keep_before = np.exp(np.cumsum(np.log1p(-dividend_drop), axis=0) - np.log1p(-dividend_drop))
    ex_rows, ex_cols = np.nonzero(pays_ex)
    ex_day = ex_idx[ex_rows, ex_cols]
    ex_keep = 1.0 - dividend_drop[ex_rows, ex_cols]
    adj_close = ret.total_return_index
    adj_close *= tk.ipo_price
    ret.total_return_index = None
    close = np.ones((n_days, n))
    close[ex_day, ex_cols] = ex_keep
    np.cumprod(close, axis=0, out=close)
    close *= adj_close
    return close, adj_close, keep_before


def _analyst_revisions(rng: dict, tk: _Tickers, earn: _Earnings, books: _Books) -> _Revisions:
    """Stage 5b: 1 + Poisson(2.5) consensus_eps revisions a quarter leading to eps_estimate."""
    r_rv = rng["revisions"]
    n = len(tk.symbols)
    q_rows, q_cols, report_idx = earn.q_rows, earn.q_cols, earn.report_idx
    prev_report = np.vstack([report_idx[:1] - 63, report_idx[:-1]])
    group_lo = np.maximum(prev_report + 1, tk.listing_idx[None, :])[q_rows, q_cols]
    group_hi = report_idx[q_rows, q_cols] - 1
    n_rev = 1 + r_rv.poisson(2.5, len(q_rows))
    group = np.repeat(np.arange(len(q_rows)), n_rev)
    position = group_lo[group] + (r_rv.random(len(group)) * (group_hi[group] - group_lo[group] + 1)).astype(np.int64)
    order = np.lexsort((position, group))
    position = position[order]
    group_start = np.concatenate([[0], np.cumsum(n_rev)[:-1]])
    progress = (np.arange(len(group)) - group_start[group] + 1) / n_rev[group]
    distinct = np.ones(len(group), dtype=bool)
    distinct[:-1] = (group[:-1] != group[1:]) | (position[:-1] != position[1:])
    rev_scale = 0.004 * np.exp(r_rv.normal(0.0, 0.3, n))
    window_price = books.close[np.maximum(group_lo - 1, tk.listing_idx[q_cols]), q_cols] * rev_scale[q_cols]
    total_revision = window_price * (0.5 * earn.rep_e + math.sqrt(0.75) * r_rv.standard_normal(len(q_rows)))
    path_noise = 0.3 * window_price[group] * r_rv.standard_normal(len(group))
    consensus = books.eps_estimate[q_rows, q_cols][group] - (total_revision[group] + path_noise) * (1.0 - progress)
    return _Revisions(q_cols[group][distinct], position[distinct], consensus[distinct])


def _constituent_ohlcv(rng: dict, path: _MarketPath, tk: _Tickers, earn: _Earnings, ret: _Returns,
                       books: _Books, idio_vol: np.ndarray) -> _Bars:
    """Stage 6a: open from the overnight gap, high/low extensions and volume around the closes.

    Consumes `idio_vol` (squared in place)."""
    r_oh = rng["ohlc"]
    beta, log_return, close = tk.beta, ret.log_return, books.close
    total_vol = np.multiply.outer(path.market_vol**2, beta**2)
    total_vol += np.multiply.outer(path.sector_vol_t**2, tk.sector_loading**2)
    idio_vol *= idio_vol
    total_vol += idio_vol
    np.sqrt(total_vol, out=total_vol)
    log_open_to_close = r_oh.standard_normal(close.shape)  # built up to log(close / open)
    log_open_to_close *= total_vol
    log_open_to_close *= -0.2
    log_open_to_close += 0.75 * log_return
    log_open_to_close[earn.rep_rows, earn.q_cols] -= 0.75 * earn.jump
    open_ = np.exp(-log_open_to_close)
    del log_open_to_close
    open_ *= close
    high = np.maximum(open_, close)
    high *= _bar_extension(r_oh, total_vol)
    low = np.minimum(open_, close)
    low /= _bar_extension(r_oh, total_vol)

    r_vo = rng["volume"]
    volume = _ar1(r_vo, 0.9, 0.4, close.shape)
    volume += 0.3 * path.regime[:, None]
    np.exp(volume, out=volume)
    abs_shock = log_return - ret.alpha
    abs_shock -= np.multiply.outer(path.drift[path.regime], beta)
    np.abs(abs_shock, out=abs_shock)
    abs_shock /= total_vol
    abs_shock *= 1.5
    abs_shock += 1.0
    volume *= abs_shock
    del abs_shock, total_vol
    volume *= tk.shares_initial * tk.turnover
    np.round(volume, out=volume)
    return _Bars(open_, high, low, close, books.adj_close, volume)


def _bar_extension(r_oh: np.random.Generator, total_vol: np.ndarray) -> np.ndarray:
    """1 + 0.5 sigma E, E exponential(1): the factor a high (low) extends beyond max (min) of open, close."""
    extension = r_oh.standard_exponential(total_vol.shape)
    extension *= total_vol
    extension *= 0.5
    extension += 1.0
    return extension


def _benchmark_ohlcv(config: SimulationConfig, rng: dict, path: _MarketPath, tk: _Tickers, ret: _Returns) -> _Bars:
    """Stage 6b: the equal-weighted index of the constituents listed yesterday and today."""
    r_bm = rng["benchmark"]
    n_days, n_sectors = path.n_days, config.n_sectors
    in_index = tk.listed.copy()
    in_index[1:] &= tk.listed[:-1]
    in_index[0] = False
    simple = np.expm1(ret.log_return)
    simple[~in_index] = 0.0
    count = in_index.sum(axis=1)
    bench_return = simple.sum(axis=1) / np.maximum(count, 1)
    del simple
    bench_return += r_bm.normal(0.0, config.benchmark_tracking_vol, n_days) * (count > 0)
    bench_return[0] = 0.0
    bench_log = np.log1p(bench_return)
    bench_close = 100.0 * np.exp(np.cumsum(bench_log))
    rho = config.sector_correlation
    sector_average_var = path.sector_vol_t**2 * (1 + (n_sectors - 1) * rho) / n_sectors
    bench_vol = np.sqrt((tk.beta.mean() * path.market_vol) ** 2 + sector_average_var)
    bench_open = bench_close * np.exp(0.1 * bench_vol * r_bm.standard_normal(n_days) - 0.8 * bench_log)
    bench_high = np.maximum(bench_open, bench_close) * (1.0 + 0.4 * bench_vol * r_bm.standard_exponential(n_days))
    bench_low = np.minimum(bench_open, bench_close) / (1.0 + 0.4 * bench_vol * r_bm.standard_exponential(n_days))
    bench_volume = 8e7 * (1.0 + 1.5 * np.abs(bench_log) / bench_vol) * np.exp(0.25 * r_bm.standard_normal(n_days))
    bench_volume = np.round(bench_volume)
    return _Bars(bench_open, bench_high, bench_low, bench_close, bench_close, bench_volume)


@functools.lru_cache(maxsize=2)
def _simulate_full(config: SimulationConfig) -> SimulatedMarket:
    """The full horizon, stage by stage (each stage reads only what earlier stages returned)."""
    rng = _streams(config.seed)
    path = _calendar_and_regime(config, rng)
    tk = _draw_tickers(config, rng, path.sector_words, path.profile)
    _listings(config, rng, tk, path.n_days)
    _vol_change_points(config, rng, tk, path.n_days)
    idio_vol = _idiosyncratic_vol(config, rng, tk, path)
    idio_shock = _standard_t(rng["idio_shock"], config.student_t_df, idio_vol.shape)
    latents = _latent_characteristics(config, rng, tk, idio_shock)
    planted = _planted_structures(config, rng, tk, path.n_days)
    news = _news_sentiment(rng, latents)
    earnings = _earnings_events(config, rng, tk, path, idio_vol)
    returns = _ticker_returns(config, path, tk, latents, earnings, idio_vol, idio_shock, planted, news)
    del idio_shock
    books = _fundamentals_and_dividends(config, rng, tk, path, latents, earnings, returns)
    revisions = _analyst_revisions(rng, tk, earnings, books)
    bars = _constituent_ohlcv(rng, path, tk, earnings, returns, books, idio_vol)
    bench = _benchmark_ohlcv(config, rng, path, tk, returns)
    universe, prices, facts = _market_frames(config, path, tk, news, earnings, books, revisions, bars, bench)
    if config.n_crypto or config.n_fx:
        universe, prices = _with_other_asset_classes(config, rng, universe, prices)
    return SimulatedMarket(universe, prices, facts, _ground_truth(config, path, tk, latents, earnings, returns, planted))


def _market_frames(config: SimulationConfig, path: _MarketPath, tk: _Tickers, news: np.ndarray,
                   earn: _Earnings, books: _Books, rev: _Revisions, bars: _Bars,
                   bench: _Bars) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Stage 7: universe, prices and facts (with the daily news_sentiment) in canonical layouts."""
    listed, day_int = tk.listed, path.day_int
    news = news[listed]
    symbols = pl.Series("ticker", tk.symbols, dtype=pl.String)
    bench_pos = int(np.searchsorted(np.array(tk.symbols), config.benchmark_ticker))
    columns = ("open", "high", "low", "close", "adj_close", "volume")
    prices = _prices_frame(day_int, listed, bench_pos, tk.symbols, config.benchmark_ticker,
                           {c: (getattr(bars, c), getattr(bench, c)) for c in columns})
    universe = _universe_frame(config, tk, path.sector_names, day_int, bench_pos)
    q_rows, q_cols = earn.q_rows, earn.q_cols
    quarterly_values = {m: books.quarterly[m][q_rows, q_cols] for m in QUARTERLY_METRICS}
    quarterly_values["eps_actual"] = books.eps_actual[q_rows, q_cols]
    quarterly_values["eps_estimate"] = books.eps_estimate[q_rows, q_cols]
    quarterly_values["earnings_surprise"] = books.earnings_surprise[q_rows, q_cols]
    fundamentals = _facts_frame(
        symbols, q_cols, earn.pe_int[q_rows], day_int[earn.rep_rows], quarterly_values,
        rev.ticker, day_int[rev.day_idx], rev.value, listed, day_int, news,
    )
    return universe, prices, fundamentals


def _ground_truth(config: SimulationConfig, path: _MarketPath, tk: _Tickers, lat: _Latents, earn: _Earnings,
                  ret: _Returns, planted: _Planted) -> GroundTruth:
    """Stage 8: the truth frames, assembled from what the stages returned."""
    listed, day_int, beta = tk.listed, path.day_int, tk.beta
    symbols = pl.Series("ticker", tk.symbols, dtype=pl.String)
    n = len(tk.symbols)
    characteristics = pl.DataFrame(
        {
            "date": _date_series("date", np.broadcast_to(day_int[:, None], listed.shape)[listed]),
            "ticker": symbols.gather(np.broadcast_to(np.arange(n, dtype=np.int32), listed.shape)[listed]),
            "momentum_drift": lat.momentum[listed],
            "low_beta": np.broadcast_to(lat.low_beta, listed.shape)[listed],
            "quality": lat.quality[listed],
            "pead_drift": earn.pead[listed],
            "sentiment_latent": lat.sentiment[listed],
            "beta": np.broadcast_to(beta, listed.shape)[listed],
            "alpha": ret.alpha[listed],
        }
    )
    cps = tk.cp_tickers
    cp_order = cps[np.argsort(tk.cp_idx[cps], kind="stable")]
    change_points = pl.DataFrame(
        {
            "ticker": symbols.gather(cp_order),
            "date": _date_series("date", day_int[tk.cp_idx[cp_order]]),
            "vol_before": tk.idio_base[cp_order] / np.sqrt(tk.cp_factor[cp_order]),
            "vol_after": tk.idio_base[cp_order] * np.sqrt(tk.cp_factor[cp_order]),
        },
        schema={"ticker": pl.String, "date": pl.Date, "vol_before": pl.Float64, "vol_after": pl.Float64},
    )
    leave = path.leave
    return GroundTruth(
        regime=pl.DataFrame({"date": _date_series("date", day_int), "state": path.regime.astype(np.int32)}),
        betas=pl.DataFrame({"ticker": symbols, "beta": beta}),
        change_points=change_points,
        premia={
            "momentum": config.momentum_premium,
            "low_beta": config.low_beta_premium,
            "quality": config.quality_premium,
            "pead": config.pead_premium,
            "sentiment": config.sentiment_premium,
        },
        characteristics=characteristics,
        regime_params={
            "state_names": ("calm bull", "volatile bear"),
            "drift": tuple(float(x) for x in path.drift),
            "vol": tuple(float(x) for x in path.vol),
            "transition_matrix": ((1.0 - leave[0], leave[0]), (leave[1], 1.0 - leave[1])),
            "expected_duration_days": (config.bull_expected_duration, config.bear_expected_duration),
            "stationary_distribution": tuple(float(x) for x in path.stationary),
            "idio_vol_multiplier": (1.0, config.bear_idio_vol_multiplier),
        },
        **_planted_truth(config, path, tk, planted),
    )


def _planted_truth(config: SimulationConfig, path: _MarketPath, tk: _Tickers, planted: _Planted) -> dict:
    symbols = pl.Series("ticker", tk.symbols, dtype=pl.String)
    predictable = pl.DataFrame(
        {"ticker": symbols.gather(planted.predictable), "kind": "ar1_idio", "strength": config.predictable_phi},
        schema=PREDICTABLE_COLUMNS,
    ) if config.predictable_phi else pl.DataFrame(schema=PREDICTABLE_COLUMNS)
    order = np.argsort(planted.drift_idx, kind="stable")
    drift_change_points = pl.DataFrame(
        {
            "ticker": symbols.gather(planted.drift_tickers[order]),
            "date": _date_series("date", path.day_int[planted.drift_idx[order]]),
            "drift_before": planted.drift_before[order],
            "drift_after": planted.drift_after[order],
        },
        schema=DRIFT_CHANGE_COLUMNS,
    )
    meta_label = {
        "feature": "news_sentiment",
        "side_rule": "momentum side = sign of the trailing 20-day return at the bet's start",
        "sign": 1,
        "strength": config.meta_label_strength,
        "drift_formula": "daily log-return drift = strength * idio_base_i * sign(news_sentiment_i,t-1)",
        "description": (
            "A momentum bet whose side agrees with the sign of the ticker's latest news_sentiment "
            "(known at the bet's start) drifts in its favour by strength * idio_base a day, one that "
            "disagrees drifts against it: agreement raises the chance of hitting the profit-taking "
            "barrier before the stop (module docstring gives the measured hit rates)."
        ),
    }
    return dict(predictable=predictable, drift_change_points=drift_change_points,
                market_change_points=_market_change_points(config, path.day_int), meta_label=meta_label)


_FX_LEVELS = (1.10, 110.0, 1.30, 0.75, 0.95, 1.30)


def _with_other_asset_classes(config: SimulationConfig, rng: dict, universe: pl.DataFrame,
                              prices: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Stage 7b (opt-in): crypto (every calendar day) and FX (every weekday) symbols appended to the
    universe and prices. Crypto: g = 0.0005 + b_i c_t + 0.02 eps, c_t a common factor with vol
    0.03 * exp(h_t - v_h) (log-vol AR(1), persistence 0.97, sd 0.3), b_i ~ U(0.8, 1.3): ~4% a day
    (~75% a year). FX: g = 0.006 eps (~9.5% a year), no drift, volume 0. eps Student-t(df)."""
    days = np.arange(np.datetime64(config.start, "D"), np.datetime64(config.horizon_end, "D") + 1)
    frames, rows = [prices], []
    for kind, n, stream in (("crypto", config.n_crypto, "crypto"), ("fx", config.n_fx, "fx")):
        if not n:
            continue
        kind_days = days if kind == "crypto" else days[np.is_busday(days)]
        symbols = list((CRYPTO_SYMBOLS if kind == "crypto" else FX_SYMBOLS)[:n])
        bars = _other_asset_bars(config, rng[stream], kind, len(kind_days), n)
        frames.append(_long_bars(kind_days, symbols, bars))
        rows += [(sym, f"{sym} (simulated {kind})", "Crypto" if kind == "crypto" else "FX", kind,
                  kind_days[0].item(), None, False) for sym in symbols]
    extra = pl.DataFrame(rows, schema=UNIVERSE_COLUMNS, orient="row")
    universe = pl.concat([universe, extra]).sort("ticker")
    return universe, pl.concat(frames).sort("date", "ticker")


def _other_asset_bars(config: SimulationConfig, rng: np.random.Generator, kind: str, n_days: int,
                      n: int) -> dict[str, np.ndarray]:
    df = config.student_t_df
    if kind == "crypto":
        common_vol = 0.03 * np.exp(_ar1(rng, 0.97, 0.3, (n_days,)) - 0.09)
        loading = rng.uniform(0.8, 1.3, n)
        vol = np.sqrt(np.multiply.outer(common_vol**2, loading**2) + 0.02**2)
        log_return = 0.0005 + np.multiply.outer(common_vol * _standard_t(rng, df, n_days), loading)
        log_return += 0.02 * _standard_t(rng, df, (n_days, n))
        level = 100.0 * np.exp(rng.normal(0.0, 1.0, n))
    else:
        vol = np.full((n_days, n), 0.006)
        log_return = 0.006 * _standard_t(rng, df, (n_days, n))
        level = np.array(_FX_LEVELS[:n])
    log_return[0] = 0.0
    close = level * np.exp(np.cumsum(log_return, axis=0))
    open_ = close * np.exp(0.05 * vol * rng.standard_normal((n_days, n)) - log_return)
    high = np.maximum(open_, close) * _bar_extension(rng, vol)
    low = np.minimum(open_, close) / _bar_extension(rng, vol)
    if kind == "crypto":
        volume = np.round(2e4 * np.exp(_ar1(rng, 0.9, 0.4, (n_days, n))) * (1.0 + 1.5 * np.abs(log_return) / vol))
    else:
        volume = np.zeros((n_days, n))
    return {"open": open_, "high": high, "low": low, "close": close, "adj_close": close, "volume": volume}


def _long_bars(days: np.ndarray, symbols: list[str], bars: dict[str, np.ndarray]) -> pl.DataFrame:
    """(date, ticker) rows of full (day x symbol) matrices."""
    n_days, n = len(days), len(symbols)
    data = {
        "date": pl.Series("date", np.repeat(days, n), dtype=pl.Date),
        "ticker": pl.Series("ticker", symbols * n_days, dtype=pl.String),
    }
    data.update({name: matrix.ravel() for name, matrix in bars.items()})
    return pl.DataFrame(data, schema=PRICE_COLUMNS)


def _prices_frame(
    day_int: np.ndarray,
    listed: np.ndarray,
    bench_pos: int,
    symbols: list[str],
    benchmark: str,
    columns: dict[str, tuple[np.ndarray, np.ndarray]],
) -> pl.DataFrame:
    """Long (date, ticker) rows of the listed constituent cells plus one benchmark row a day.

    Row-major boolean extraction gives (date, ticker) order; each day's benchmark row is slotted
    in after the constituents whose symbol sorts before it.
    """
    n_days, n = listed.shape
    per_day = listed.sum(axis=1) + 1
    day_start = np.concatenate([[0], np.cumsum(per_day)[:-1]])
    bench_rows = day_start + listed[:, :bench_pos].sum(axis=1)
    is_constituent = np.ones(int(per_day.sum()), dtype=bool)
    is_constituent[bench_rows] = False
    ticker_code = np.empty(len(is_constituent), dtype=np.int32)
    ticker_code[is_constituent] = np.broadcast_to(np.arange(n, dtype=np.int32), listed.shape)[listed]
    ticker_code[~is_constituent] = n
    data = {
        "date": _date_series("date", np.repeat(day_int, per_day)),
        "ticker": pl.Series("ticker", symbols + [benchmark], dtype=pl.String).gather(ticker_code),
    }
    for name, (matrix, bench) in columns.items():
        values = np.empty(len(is_constituent))
        values[is_constituent] = matrix[listed]
        values[~is_constituent] = bench
        data[name] = values
    return pl.DataFrame(data, schema=PRICE_COLUMNS)


def _universe_frame(
    config: SimulationConfig, tk: _Tickers, sector_names: list[str], day_int: np.ndarray, bench_pos: int
) -> pl.DataFrame:
    n = len(tk.symbols)

    def insert(values: list, bench_value) -> list:
        return values[:bench_pos] + [bench_value] + values[bench_pos:]

    listed_dates = [int(d) for d in day_int[tk.listing_idx]]
    delisted_dates = [int(day_int[i]) if d else None for i, d in zip(tk.last_idx, tk.delisted)]
    return pl.DataFrame(
        {
            "ticker": insert(tk.symbols, config.benchmark_ticker),
            "name": insert(tk.names, f"{config.benchmark_ticker} equal-weighted benchmark (simulated)"),
            "sector": insert([sector_names[s] for s in tk.sector_of], "Benchmark"),
            "asset_class": insert(["equity"] * n, "etf"),
            "listed_date": pl.Series(insert(listed_dates, int(day_int[0])), dtype=pl.Int32).cast(pl.Date),
            "delisted_date": pl.Series(insert(delisted_dates, None), dtype=pl.Int32).cast(pl.Date),
            "is_benchmark": insert([False] * n, True),
        },
        schema=UNIVERSE_COLUMNS,
    )


def _facts_frame(
    symbols: pl.Series,
    report_ticker: np.ndarray,
    report_period_end: np.ndarray,
    report_day: np.ndarray,
    report_values: dict[str, np.ndarray],
    revision_ticker: np.ndarray,
    revision_day: np.ndarray,
    revision_value: np.ndarray,
    listed: np.ndarray,
    day_int: np.ndarray,
    news: np.ndarray,
) -> pl.DataFrame:
    """All facts in (available_at, ticker, metric) order, metrics in `FUNDAMENTAL_METRICS` order.

    Reports and revisions (few) are sorted by a composite key and merged into the daily news
    rows (many, already in (date, ticker) order, and news_sentiment is the last metric).
    """
    n_metrics = len(FUNDAMENTAL_METRICS)
    n = listed.shape[1]
    code = {m: i for i, m in enumerate(FUNDAMENTAL_METRICS)}
    report_metrics = [m for m in FUNDAMENTAL_METRICS if m in report_values]
    n_rep = len(report_ticker)
    other_ticker = np.concatenate([np.repeat(report_ticker, len(report_metrics)), revision_ticker])
    other_avail = np.concatenate([np.repeat(report_day, len(report_metrics)), revision_day])
    other_period = np.concatenate([np.repeat(report_period_end, len(report_metrics)), revision_day])
    other_metric = np.concatenate([np.tile([code[m] for m in report_metrics], n_rep),
                                   np.full(len(revision_ticker), code["consensus_eps"])])
    other_value = np.concatenate([np.stack([report_values[m] for m in report_metrics], axis=1).ravel(), revision_value])
    other_key = (other_avail * n + other_ticker) * n_metrics + other_metric
    order = np.argsort(other_key, kind="stable")
    other_key = other_key[order]

    news_day = np.broadcast_to(day_int[:, None], listed.shape)[listed]
    news_ticker = np.broadcast_to(np.arange(n, dtype=np.int64), listed.shape)[listed]
    news_key = (news_day * n + news_ticker) * n_metrics + code["news_sentiment"]
    other_rows = np.arange(len(other_key)) + np.searchsorted(news_key, other_key)
    is_news = np.ones(len(other_key) + len(news_key), dtype=bool)
    is_news[other_rows] = False

    def merged(other: np.ndarray, daily: np.ndarray, dtype) -> np.ndarray:
        out = np.empty(len(is_news), dtype=dtype)
        out[other_rows] = other[order]
        out[is_news] = daily
        return out

    available = merged(other_avail, news_day, np.int32)
    return pl.DataFrame(
        {
            "ticker": symbols.gather(merged(other_ticker, news_ticker, np.int32)),
            "period_end": pl.Series(merged(other_period, news_day, np.int32)).cast(pl.Date),
            "available_at": pl.Series(available).cast(pl.Date),
            "metric": pl.Series("metric", FUNDAMENTAL_METRICS, dtype=pl.String).gather(
                merged(other_metric, np.full(len(news_key), code["news_sentiment"]), np.int32)
            ),
            "value": merged(other_value, news, np.float64),
        },
        schema=FUNDAMENTAL_FACT_COLUMNS,
    )

"""Turnover controls: the smoothed score is a causal truncated EWM, the rebalance schedule trades
on the first session of each period, and the default book on a small market turns over < 50%."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.calendar import trading_days
from quant_lib.factors.smoothing import smooth_scores, smoothing_window
from quant_lib.portfolio.schedule import rebalance_day_flags

DAYS = trading_days(date(2024, 6, 3), date(2024, 7, 12))


def _rankings(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(d, t, float(rng.normal())) for d in DAYS for t in ("AAA", "BBB", "CCC", "DDD")]
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "ticker": pl.String, "score": pl.Float64}, orient="row")
    frame = frame.filter(~((pl.col("ticker") == "DDD") & (pl.col("date") < DAYS[10])))  # DDD listed later
    return frame.with_columns(pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"))


def test_smoothed_score_is_the_truncated_ewm_known_answer():
    half_life = 2.0
    ranked = _rankings()
    out = smooth_scores(ranked, half_life)
    assert smoothing_window(half_life) == 10 and out.height == ranked.height
    decay = 0.5 ** (1 / half_life)
    raw = ranked.filter(pl.col("ticker") == "AAA")["score"].to_numpy()
    weights = decay ** np.arange(10)
    expected = raw[-10:][::-1] @ weights / weights.sum()
    assert out.filter(pl.col("ticker") == "AAA")["score"][-1] == pytest.approx(expected, rel=1e-12)
    ddd = out.filter(pl.col("ticker") == "DDD")
    assert ddd["score"][0] == pytest.approx(ddd["raw_score"][0]), "a new listing starts at its raw score"
    second = (decay * ddd["raw_score"][0] + ddd["raw_score"][1]) / (1 + decay)
    assert ddd["score"][1] == pytest.approx(second)
    latest = out.filter(pl.col("date") == DAYS[-1]).sort("score", descending=True)
    assert latest["rank"].to_list() == [1, 2, 3, 4]
    assert smooth_scores(ranked, 0.0)["score"].equals(ranked["score"])


def test_smoothed_score_is_causal_and_truncation_invariant():
    ranked, half_life = _rankings(), 1.5
    window = smoothing_window(half_life)
    full = smooth_scores(ranked, half_life)
    cut = DAYS[20]
    past_only = smooth_scores(ranked.filter(pl.col("date") <= cut), half_life)
    assert past_only.filter(pl.col("date") == cut).equals(full.filter(pl.col("date") == cut)), "causal"
    truncated = smooth_scores(ranked.filter(pl.col("date") >= DAYS[20 - window + 1]), half_life)
    assert truncated.filter(pl.col("date") >= cut).equals(full.filter(pl.col("date") >= cut)), "truncation-invariant"
    changed = ranked.with_columns(pl.when(pl.col("date") == DAYS[20 - window]).then(99.0).otherwise(pl.col("score")).alias("score"))
    assert smooth_scores(changed, half_life).filter(pl.col("date") >= cut).equals(full.filter(pl.col("date") >= cut))
    with pytest.raises(ValueError, match="half-life"):
        smooth_scores(ranked, -1.0)


def test_rebalance_days_are_the_first_session_of_each_period():
    days = pl.Series("date", trading_days(date(2024, 6, 24), date(2024, 7, 12)))
    weekly = days.filter(rebalance_day_flags(days, "weekly")).to_list()
    monthly = days.filter(rebalance_day_flags(days, "monthly")).to_list()
    assert weekly == [date(2024, 6, 24), date(2024, 7, 1), date(2024, 7, 8)]
    assert monthly == [date(2024, 7, 1)]
    assert rebalance_day_flags(days, "daily").all()
    with pytest.raises(ValueError, match="rebalance_frequency"):
        rebalance_day_flags(days, "hourly")


def test_trade_lists_trade_only_on_rebalance_days():
    from quant_lib.portfolio.construction import PortfolioConfig, build_trade_lists

    monday, tuesday = date(2024, 7, 8), date(2024, 7, 9)
    targets = pl.DataFrame({"date": [monday, tuesday], "ticker": ["AAA", "AAA"], "weight": [0.5, 0.5]})
    holdings = pl.DataFrame({"date": [monday, tuesday], "ticker": ["CASH", "CASH"], "shares": [10_000.0, 10_000.0]})
    prices = pl.DataFrame({"date": [monday, tuesday], "ticker": ["AAA", "AAA"], "close": [10.0, 10.0]})
    rankings = targets.select("date", "ticker", pl.lit(1.0).alias("score"))
    config = PortfolioConfig(rebalance_frequency="weekly", rebalance_rate=1.0, max_position=0.5)
    trades = build_trade_lists(targets, holdings, prices, rankings, targets.select("date", "ticker"), config)
    assert trades.select("date", "ticker", "shares").rows() == [(monday, "AAA", 500)], "Tuesday drifts"
    with pytest.raises(ValueError, match="rebalance_frequency"):
        PortfolioConfig(rebalance_frequency="hourly")


@pytest.mark.slow
def test_default_book_turns_over_less_than_half_a_month_on_a_small_market():
    """The full pipeline on 40 simulated tickers (top 10), 120 sessions: after the first buy-in the
    default book's 21-day turnover stays under 50%, far below the book without controls."""
    from quant_lib.data.calendar import shift_trading_days
    from quant_lib.data.pit import fundamentals_snapshot
    from quant_lib.data.simulate import SimulationConfig, simulate_market
    from quant_lib.data.universe import universe_membership
    from quant_lib.execution.paper import PaperExecutor
    from quant_lib.factors import compute_factor_values, compute_rankings, process_factors
    from quant_lib.portfolio.book import project_book, traded_turnover
    from quant_lib.portfolio.construction import PortfolioConfig, build_targets, portfolio_values
    from quant_lib.regime import DynamicFactorWeights, regime_path

    end = date(2009, 12, 31)
    first = shift_trading_days(end, -119)
    market = simulate_market(SimulationConfig(n_tickers=40, seed=11), end=end)
    sessions = market.prices["date"].unique().sort()
    scores = process_factors(compute_factor_values(
        market.prices, fundamentals_snapshot(market.fundamentals, sessions).frame, market.universe).values)
    regimes = regime_path(market.prices.filter(pl.col("ticker") == "SPY"), lookback=252)
    rankings = compute_rankings(scores, regimes, DynamicFactorWeights(), with_metadata=False)
    rankings = rankings.filter(pl.col("date") >= shift_trading_days(first, -30))
    span = sessions.filter(sessions >= first).to_list()
    universe = universe_membership(market.universe, span)
    prices = market.prices.filter(pl.col("date") >= shift_trading_days(first, -260))

    def mean_turnover(config: PortfolioConfig) -> float:
        ranked = smooth_scores(rankings, config.score_half_life).filter(pl.col("date") >= first)
        targets = build_targets(ranked, prices, universe, config).targets
        book_prices = prices.filter(pl.col("date") >= first)
        holdings, orders = project_book(PaperExecutor(config.initial_cash, 2.0, 1.0, allow_short=False), span,
                                        targets, book_prices, ranked, universe, config)
        trades = orders.select("date", (pl.col("filled_shares") * pl.col("fill_price")).alias("value"))
        turnover = traded_turnover(trades, portfolio_values(holdings, book_prices))["turnover_21d"]
        return float(turnover[21:].mean())  # windows after the first day's buy-in

    default = PortfolioConfig(top_n=10)
    uncontrolled = PortfolioConfig(top_n=10, rebalance_band=0.0, hold_rank=None, score_half_life=0.0,
                                   rebalance_rate=1.0, rebalance_frequency="daily")
    controlled, baseline = mean_turnover(default), mean_turnover(uncontrolled)
    assert controlled < 0.5 < baseline and controlled < baseline / 3, (controlled, baseline)

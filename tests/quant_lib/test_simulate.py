"""The simulated market: canonical layouts, determinism, point-in-time slicing and planted truths."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data import schemas
from quant_lib.data.simulate import (
    PREMIUM_CHARACTERISTICS,
    SimulatedMarket,
    SimulationConfig,
    _simulate_full,
    simulate_market,
)

CONFIG = SimulationConfig(n_tickers=60, seed=7)
N_SYMBOLS = CONFIG.n_tickers + round(CONFIG.delisting_fraction * CONFIG.n_tickers)  # replacements list later
HORIZON = 20


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return simulate_market(CONFIG)


@pytest.fixture(scope="module")
def panel(market: SimulatedMarket) -> pl.DataFrame:
    """Prices by (ticker, date) with log total returns (from adj_close), next-20-day returns, previous close."""
    return (
        market.prices.sort("ticker", "date")
        .with_columns(log_price=pl.col("adj_close").log(), prev_close=pl.col("close").shift(1).over("ticker"))
        .with_columns(
            ret=pl.col("log_price").diff().over("ticker"),
            fwd=(pl.col("log_price").shift(-HORIZON) - pl.col("log_price")).over("ticker"),
        )
    )


@pytest.fixture(scope="module")
def returns(panel: pl.DataFrame) -> pl.DataFrame:
    """Constituent rows of `panel` with the benchmark's return and next-20-day return alongside."""
    bench = panel.filter(pl.col("ticker") == CONFIG.benchmark_ticker).select("date", bench_ret="ret", bench_fwd="fwd")
    return panel.filter(pl.col("ticker") != CONFIG.benchmark_ticker).join(bench, on="date")


@pytest.fixture(scope="module")
def reports(market: SimulatedMarket, panel: pl.DataFrame) -> pl.DataFrame:
    """Quarterly and earnings facts, one row per report, with the close before the report."""
    return (
        market.fundamentals.filter(pl.col("metric").is_in(schemas.QUARTERLY_METRICS + schemas.EARNINGS_METRICS))
        .pivot(on="metric", index=["ticker", "period_end", "available_at"], values="value")
        .join(panel.select("ticker", "prev_close", available_at="date"), on=["ticker", "available_at"])
    )


def test_frames_have_canonical_layouts_and_pass_schemas(market: SimulatedMarket) -> None:
    assert market.prices.schema == pl.Schema(schemas.PRICE_COLUMNS)
    assert market.universe.schema == pl.Schema(schemas.UNIVERSE_COLUMNS)
    assert market.fundamentals.schema == pl.Schema(schemas.FUNDAMENTAL_FACT_COLUMNS)
    schemas.PricesSchema.validate(market.prices)
    schemas.UniverseSchema.validate(market.universe)
    schemas.FundamentalFactsSchema.validate(market.fundamentals)
    assert set(market.fundamentals["metric"].unique()) == set(schemas.FUNDAMENTAL_METRICS)


def test_bars_are_valid_positive_and_sorted(market: SimulatedMarket) -> None:
    prices = market.prices
    bad = prices.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.min_horizontal("open", "high", "low", "close", "adj_close") <= 0)
        | (pl.col("volume") < 0)
    )
    assert bad.height == 0
    assert prices.select(pl.struct("date", "ticker").is_unique().all()).item()
    assert prices.equals(prices.sort("date", "ticker"))
    assert prices.filter(pl.col("high") > pl.max_horizontal("open", "close")).height > 0.9 * prices.height


def test_universe_has_constituents_and_one_benchmark(market: SimulatedMarket) -> None:
    universe = market.universe
    assert universe.height == N_SYMBOLS + 1
    bench = universe.filter(pl.col("is_benchmark"))
    assert bench.rows() == [(CONFIG.benchmark_ticker, bench["name"][0], "Benchmark", "etf", CONFIG.start, None, True)]
    equities = universe.filter(~pl.col("is_benchmark"))
    assert equities["asset_class"].unique().to_list() == ["equity"]
    assert equities["sector"].n_unique() == CONFIG.n_sectors
    assert equities["name"].null_count() == 0
    assert equities["ticker"].to_list()[:3] == ["AAA", "AAB", "AAC"]
    assert set(market.prices["ticker"].unique()) == set(universe["ticker"])


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    config = SimulationConfig(n_tickers=15, seed=11)
    cached, fresh = simulate_market(config), _simulate_full.__wrapped__(config)
    assert fresh is not cached
    for name in ("prices", "universe", "fundamentals"):
        assert getattr(fresh, name).equals(getattr(cached, name)), name
    assert (fresh.prices.hash_rows() == cached.prices.hash_rows()).all()
    assert (fresh.fundamentals.hash_rows() == cached.fundamentals.hash_rows()).all()
    for name in ("regime", "betas", "change_points", "characteristics"):
        assert getattr(fresh.truth, name).equals(getattr(cached.truth, name)), name
    other = simulate_market(SimulationConfig(n_tickers=15, seed=12))
    assert not other.prices.equals(cached.prices)
    assert not other.fundamentals.equals(cached.fundamentals)
    assert not other.truth.regime.equals(cached.truth.regime)


def test_cutting_at_end_is_a_prefix_of_a_longer_cut() -> None:
    early, late = date(2012, 6, 29), date(2020, 3, 31)
    short, long = simulate_market(CONFIG, end=early), simulate_market(CONFIG, end=late)
    assert long.prices.filter(pl.col("date") <= early).equals(short.prices)
    assert long.fundamentals.filter(pl.col("available_at") <= early).equals(short.fundamentals)
    assert long.truth.regime.filter(pl.col("date") <= early).equals(short.truth.regime)
    assert long.truth.characteristics.filter(pl.col("date") <= early).equals(short.truth.characteristics)
    assert long.truth.change_points.filter(pl.col("date") <= early).equals(short.truth.change_points)
    universe_then = long.universe.filter(pl.col("listed_date") <= early).with_columns(
        delisted_date=pl.when(pl.col("delisted_date") <= early).then("delisted_date")
    )
    assert universe_then.equals(short.universe)
    assert short.universe.height < long.universe.height <= N_SYMBOLS + 1


def test_nothing_is_dated_or_known_after_end() -> None:
    end = date(2015, 9, 16)
    cut = simulate_market(CONFIG, end=end)
    assert cut.prices["date"].max() == end
    assert cut.fundamentals["available_at"].max() <= end
    assert cut.truth.regime["date"].max() == end
    assert cut.truth.characteristics["date"].max() == end
    assert cut.truth.change_points.filter(pl.col("date") > end).height == 0
    assert cut.universe.filter((pl.col("listed_date") > end) | (pl.col("delisted_date") > end)).height == 0
    assert set(cut.truth.betas["ticker"]) == set(cut.universe.filter(~pl.col("is_benchmark"))["ticker"])
    with pytest.raises(ValueError, match="after the simulation horizon"):
        simulate_market(CONFIG, end=date(2036, 1, 2))


def test_bear_regime_is_persistent_and_much_more_volatile(market: SimulatedMarket, returns: pl.DataFrame) -> None:
    regime = market.truth.regime
    run_lengths = regime.with_columns(run=pl.col("state").rle_id()).group_by("run").agg(pl.first("state"), pl.len())
    assert run_lengths.filter(pl.col("state") == 0)["len"].mean() > 100
    assert run_lengths.filter(pl.col("state") == 1)["len"].mean() > 30
    assert 0.1 < regime["state"].mean() < 0.4
    bench = returns.select("date", "bench_ret").unique("date").join(regime, on="date").drop_nulls()
    vol = dict(bench.group_by("state").agg(pl.col("bench_ret").std()).iter_rows())
    assert vol[1] > 1.5 * vol[0]
    transition = np.array(market.truth.regime_params["transition_matrix"])
    np.testing.assert_allclose(transition.sum(axis=1), 1.0)
    assert market.truth.regime_params["vol"][1] > 2 * market.truth.regime_params["vol"][0]


def test_estimated_betas_track_true_betas(returns: pl.DataFrame, market: SimulatedMarket) -> None:
    estimated = (
        returns.drop_nulls(["ret", "bench_ret"])
        .group_by("ticker")
        .agg(estimate=pl.cov("ret", "bench_ret") / pl.col("bench_ret").var())
        .join(market.truth.betas, on="ticker")
    )
    assert estimated.height == N_SYMBOLS
    assert estimated.select(pl.corr("estimate", "beta")).item() > 0.9
    assert 0.4 <= market.truth.betas["beta"].min() and market.truth.betas["beta"].max() <= 1.7
    assert abs(market.truth.betas["beta"].mean() - 1.0) < 0.15


def test_returns_have_fat_tails_and_volume_rises_with_absolute_return(
    returns: pl.DataFrame, market: SimulatedMarket
) -> None:
    daily = returns.drop_nulls("ret")
    r = daily["ret"].to_numpy()
    excess_kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3
    assert excess_kurtosis > 1
    with_volume = daily.join(market.prices.select("date", "ticker", "volume"), on=["date", "ticker"])
    per_ticker = with_volume.group_by("ticker").agg(rho=pl.corr(pl.col("ret").abs(), "volume", method="spearman"))
    assert per_ticker["rho"].min() > 0
    assert per_ticker["rho"].mean() > 0.2


def test_planted_premia_show_small_positive_rank_ic(returns: pl.DataFrame, market: SimulatedMarket) -> None:
    """Mean daily rank IC of each characteristic vs next-20-day beta-neutral returns, 2005-2035."""
    panel = (
        market.truth.characteristics.join(returns.select("date", "ticker", "fwd", "bench_fwd"), on=["date", "ticker"])
        .with_columns(neutral=pl.col("fwd") - pl.col("beta") * pl.col("bench_fwd"))
        .drop_nulls("neutral")
        .filter(pl.col("date").dt.weekday() == 3)
    )
    ics = panel.group_by("date").agg(
        [pl.corr(c, "neutral", method="spearman").alias(name) for name, c in PREMIUM_CHARACTERISTICS.items()]
    )
    for name in PREMIUM_CHARACTERISTICS:
        mean_ic = ics[name].fill_nan(None).mean()
        assert 0.01 < mean_ic < 0.15, (name, mean_ic)
        assert market.truth.premia[name] > 0


def test_past_twelve_one_month_returns_predict_future_returns(returns: pl.DataFrame, market: SimulatedMarket) -> None:
    panel = (
        returns.with_columns(momentum=(pl.col("log_price").shift(21) - pl.col("log_price").shift(252)).over("ticker"))
        .join(market.truth.betas, on="ticker")
        .with_columns(neutral=pl.col("fwd") - pl.col("beta") * pl.col("bench_fwd"))
        .drop_nulls(["momentum", "neutral"])
        .filter(pl.col("date").dt.weekday() == 3)
    )
    ic = panel.group_by("date").agg(ic=pl.corr("momentum", "neutral", method="spearman"))["ic"]
    assert ic.mean() > 0.01


def test_expected_returns_use_only_the_previous_days_characteristics(market: SimulatedMarket) -> None:
    premia = market.truth.premia
    chars = market.truth.characteristics.sort("ticker", "date")
    planted = sum(premia[name] * pl.col(c).shift(1).over("ticker") for name, c in PREMIUM_CHARACTERISTICS.items())
    check = chars.with_columns(planted=planted).drop_nulls("planted")
    np.testing.assert_allclose(check["alpha"].to_numpy(), check["planted"].to_numpy(), rtol=1e-9, atol=1e-15)


def test_listing_and_delisting_bound_every_ticker(market: SimulatedMarket) -> None:
    universe = market.universe
    assert universe.filter(pl.col("listed_date") > CONFIG.start).height >= 3
    assert universe["delisted_date"].null_count() <= universe.height - 3
    spans = market.prices.group_by("ticker").agg(first=pl.col("date").min(), last=pl.col("date").max(), days=pl.len())
    spans = spans.join(universe, on="ticker")
    assert (spans["first"] == spans["listed_date"]).all()
    delisted = spans.filter(pl.col("delisted_date").is_not_null())
    assert (delisted["last"] == delisted["delisted_date"]).all()
    assert (spans.filter(pl.col("delisted_date").is_null())["last"] == market.prices["date"].max()).all()
    facts = market.fundamentals.join(universe.select("ticker", "listed_date", "delisted_date"), on="ticker")
    assert facts.filter(
        (pl.col("available_at") < pl.col("listed_date")) | (pl.col("available_at") > pl.col("delisted_date"))
    ).height == 0
    chars = market.truth.characteristics.group_by("ticker").agg(days=pl.len())
    assert chars.join(spans, on="ticker").filter(pl.col("days") != pl.col("days_right")).height == 0


def test_quarterly_reports_arrive_20_to_60_days_after_quarter_end(market: SimulatedMarket) -> None:
    reports = market.fundamentals.filter(pl.col("metric").is_in(schemas.QUARTERLY_METRICS + schemas.EARNINGS_METRICS))
    lag = (reports["available_at"] - reports["period_end"]).dt.total_days()
    assert lag.min() >= 20 and lag.max() <= 60
    assert reports["available_at"].dt.weekday().max() <= 5
    assert set(reports["period_end"].dt.month().unique()) == {3, 6, 9, 12}
    assert (reports["period_end"] == reports["period_end"].dt.month_end()).all()
    per_report = reports.group_by("ticker", "period_end").agg(
        pl.col("available_at").n_unique().alias("dates"), pl.col("metric").n_unique().alias("metrics")
    )
    assert (per_report["dates"] == 1).all()
    assert (per_report["metrics"] == len(schemas.QUARTERLY_METRICS) + len(schemas.EARNINGS_METRICS)).all()


def test_fundamentals_and_earnings_are_coherent(reports: pl.DataFrame) -> None:
    wide = reports
    assert (wide["gross_profit"] <= wide["revenue"]).all()
    assert (wide["ebitda"] <= wide["gross_profit"]).all()
    assert (wide["total_debt"] < wide["total_assets"]).all()
    assert (wide["book_equity"] > 0).mean() > 0.98
    assert (wide["dividends"] >= 0).all()
    assert (wide["shares_outstanding"] > 0).all()
    net_margin = wide["net_income"] / wide["revenue"]
    assert 0.03 < net_margin.median() < 0.25
    assert 0.0 < (wide["net_income"] < 0).mean() < 0.2
    np.testing.assert_allclose(wide["eps_actual"], wide["net_income"] / wide["shares_outstanding"], rtol=1e-6)
    np.testing.assert_allclose(
        wide["earnings_surprise"],
        (wide["eps_actual"] - wide["eps_estimate"]) / wide["prev_close"],
        rtol=1e-9,
        atol=1e-12,
    )


def test_quality_drives_fundamentals(market: SimulatedMarket, reports: pl.DataFrame) -> None:
    wide = reports.with_columns(
        roe=pl.col("net_income") / pl.col("book_equity"), leverage=pl.col("total_debt") / pl.col("total_assets")
    )
    quality = market.truth.characteristics.select("ticker", period_end="date", quality="quality")
    joined = wide.sort("period_end").join_asof(
        quality.sort("period_end"), on="period_end", by="ticker", check_sortedness=False
    )
    assert joined.select(pl.corr("quality", "roe", method="spearman")).item() > 0.2
    assert joined.select(pl.corr("quality", "leverage", method="spearman")).item() < -0.1


def test_consensus_revisions_lead_to_the_estimate_and_predict_the_surprise(
    market: SimulatedMarket, reports: pl.DataFrame
) -> None:
    revisions = market.fundamentals.filter(pl.col("metric") == "consensus_eps").sort("ticker", "available_at")
    assert (revisions["period_end"] == revisions["available_at"]).all()
    assert revisions.select(pl.struct("ticker", "available_at").is_unique().all()).item()
    # each revision belongs to the next report after it
    tagged = revisions.join_asof(
        reports.select(
            "ticker", "eps_estimate", "earnings_surprise", "prev_close", report_date="available_at"
        ).sort("report_date"),
        left_on="available_at", right_on="report_date", by="ticker", strategy="forward", check_sortedness=False,
    ).drop_nulls("report_date")
    per_report = tagged.group_by("ticker", "report_date").agg(
        first=pl.col("value").first(), last=pl.col("value").last(), estimate=pl.col("eps_estimate").first(),
        surprise=pl.col("earnings_surprise").first(), price=pl.col("prev_close").first(), n=pl.len(),
    )
    np.testing.assert_allclose(per_report["last"], per_report["estimate"], rtol=1e-12)
    assert per_report["n"].mean() > 2
    multi = per_report.filter(pl.col("n") > 1).with_columns(
        revision=(pl.col("last") - pl.col("first")) / pl.col("price")
    )
    assert multi.select(pl.corr("revision", "surprise", method="spearman")).item() > 0.15


def test_news_sentiment_is_bounded_daily_and_tracks_the_latent(market: SimulatedMarket) -> None:
    news = market.fundamentals.filter(pl.col("metric") == "news_sentiment")
    assert news["value"].min() >= -1 and news["value"].max() <= 1
    assert (news["period_end"] == news["available_at"]).all()
    constituent_rows = market.prices.filter(pl.col("ticker") != CONFIG.benchmark_ticker).height
    assert news.height == constituent_rows
    joined = news.join(
        market.truth.characteristics.select("ticker", "sentiment_latent", available_at="date"),
        on=["ticker", "available_at"],
    )
    assert joined.select(pl.corr("value", "sentiment_latent")).item() > 0.5


def test_planted_change_points_show_in_realized_idiosyncratic_vol(
    returns: pl.DataFrame, market: SimulatedMarket
) -> None:
    points = market.truth.change_points
    assert 0.1 * N_SYMBOLS <= points.height <= 0.3 * N_SYMBOLS
    ratio = points["vol_after"] / points["vol_before"]
    assert ((ratio >= 2 - 1e-9) & (ratio <= 3 + 1e-9) | (ratio <= 0.5 + 1e-9) & (ratio >= 1 / 3 - 1e-9)).all()
    residual = returns.join(market.truth.betas, on="ticker").with_columns(
        residual=pl.col("ret") - pl.col("beta") * pl.col("bench_ret")
    )
    windows = residual.join(points.select("ticker", cp_date="date"), on="ticker").with_columns(
        after=pl.col("date") >= pl.col("cp_date"),
        distance=(pl.col("date") - pl.col("cp_date")).dt.total_days().abs(),
    ).filter(pl.col("distance") <= 365)
    realized = (
        windows.group_by("ticker", "after")
        .agg(vol=pl.col("residual").std())
        .pivot(on="after", index="ticker", values="vol")
    )
    realized = realized.join(points, on="ticker").with_columns(
        realized_ratio=pl.col("true") / pl.col("false"), true_ratio=pl.col("vol_after") / pl.col("vol_before")
    )
    same_direction = ((realized["realized_ratio"] > 1) == (realized["true_ratio"] > 1)).mean()
    assert same_direction >= 0.9
    assert realized.select(pl.corr(pl.col("realized_ratio").log(), pl.col("true_ratio").log())).item() > 0.7


def test_adj_close_is_a_forward_adjusted_total_return_index(panel: pl.DataFrame) -> None:
    ratio = panel.with_columns(
        ratio=pl.col("adj_close") / pl.col("close"), first=pl.col("prev_close").is_null()
    ).with_columns(step=pl.col("ratio") / pl.col("ratio").shift(1).over("ticker"))
    np.testing.assert_allclose(ratio.filter(pl.col("first"))["ratio"], 1.0)
    assert ratio["step"].drop_nulls().min() >= 1 - 1e-12
    final = ratio.group_by("ticker").agg(pl.col("ratio").last())
    assert final.filter(pl.col("ratio") > 1.05).height > CONFIG.n_tickers // 3
    bench = panel.filter(pl.col("ticker") == CONFIG.benchmark_ticker)
    assert (bench["close"] == bench["adj_close"]).all()


def test_benchmark_is_the_equal_weighted_average_of_its_constituents(returns: pl.DataFrame) -> None:
    joined = (
        returns.drop_nulls("ret")
        .group_by("date")
        .agg(ew=(pl.col("ret").exp() - 1).mean(), bench=pl.col("bench_ret").first().exp() - 1)
    )
    assert joined.height > 7000
    assert joined.select(pl.corr("bench", "ew")).item() > 0.99
    assert (joined["bench"] - joined["ew"]).std() < 0.0005


def test_open_gaps_carry_the_earnings_reaction(market: SimulatedMarket, panel: pl.DataFrame) -> None:
    gaps = panel.select("ticker", "date", gap=(pl.col("open") / pl.col("prev_close")).log().abs()).drop_nulls()
    report_days = market.fundamentals.filter(pl.col("metric") == "eps_actual").select("ticker", date="available_at")
    on_report = gaps.join(report_days, on=["ticker", "date"], how="semi")["gap"]
    otherwise = gaps.join(report_days, on=["ticker", "date"], how="anti")["gap"]
    assert (otherwise > 0).mean() > 0.99
    assert on_report.mean() > 2 * otherwise.mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_tickers": 0}, "n_tickers"),
        ({"student_t_df": 2.0}, "student_t_df"),
        ({"delisting_fraction": 1.5}, "delisting_fraction"),
        ({"horizon_end": date(2006, 1, 1)}, "horizon"),
        ({"benchmark_ticker": "spy"}, "benchmark_ticker"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**kwargs)


def test_small_config_keeps_contract() -> None:
    small = simulate_market(SimulationConfig(n_tickers=5, seed=3, n_sectors=3), end=date(2010, 12, 31))
    assert small.universe.height >= 6
    assert small.universe.filter(~pl.col("is_benchmark"))["sector"].n_unique() <= 3
    assert small.prices["date"].min() == CONFIG.start
    schemas.PricesSchema.validate(small.prices)
    schemas.FundamentalFactsSchema.validate(small.fundamentals)

"""Factor registry and the one-call computation of every factor over the (date x ticker) panel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from quant_lib.factors._panel import (
    ENGINE,
    SNAPSHOT_DATE_COLUMNS,
    SNAPSHOT_VALUE_COLUMNS,
    build_panel,
    date_ordered,
    has_ticker,
    is_not_ticker,
    non_null_columns,
    require_columns,
    trading_day_index,
)
from quant_lib.factors.fundamental_factors import (
    accruals_anomaly,
    analyst_revisions,
    apply_accruals,
    apply_analyst_revisions,
    apply_news_sentiment,
    apply_post_earnings_drift,
    apply_quality_inputs,
    apply_quality_scores,
    needs_surprise_fallback,
    news_sentiment_score,
    post_earnings_drift,
    quality_minus_junk,
)
from quant_lib.factors.price_factors import (
    apply_beta,
    apply_idiosyncratic_volatility,
    apply_volatility_scaled_momentum,
    betting_against_beta,
    idiosyncratic_volatility,
    volatility_scaled_momentum,
)
from quant_lib.factors.valuation import ValuationParams, apply_valuation_upside, valuation_upside


@dataclass(frozen=True)
class FactorSpec:
    """A factor: its public function, inputs and orientation.

    `sign` is the sign applied to the underlying characteristic so that the factor column is
    "higher = better" (-1 for beta, accruals, idiosyncratic volatility). `lookback_days` is the
    trading-day history (rows per ticker, returns included) a value needs. A factor is computable
    when the benchmark is present (if `needs_benchmark`), every column in `required_columns` and
    at least one of `required_any` (if given) has a non-null value in the fundamentals.
    """

    name: str
    function: Callable[..., pl.DataFrame]
    inputs: tuple[str, ...]
    sign: int
    lookback_days: int
    reference: str
    description: str
    needs_benchmark: bool = False
    required_columns: tuple[str, ...] = ()
    required_any: tuple[str, ...] = field(default=())


FACTORS: dict[str, FactorSpec] = {
    spec.name: spec
    for spec in (
        FactorSpec(
            "vsm", volatility_scaled_momentum, ("prices",), 1, 253,
            "Moskowitz, Ooi & Pedersen (2012), Time series momentum",
            "12-1 month return over 60-day annualized volatility (floored at 5%)",
        ),
        FactorSpec(
            "bab", betting_against_beta, ("prices",), -1, 253,
            "Frazzini & Pedersen (2014), Betting against beta",
            "minus the 252-day beta to the benchmark shrunk toward 1 (0.6 beta + 0.4)",
            needs_benchmark=True,
        ),
        FactorSpec(
            "qmj", quality_minus_junk, ("fundamentals", "prices"), 1, 253,
            "Asness, Frazzini & Pedersen (2019), Quality minus junk",
            "mean of profitability, growth, safety and payout rank z-scores",
            required_columns=("total_assets",),
            required_any=("gross_profit", "net_income", "operating_cash_flow"),
        ),
        FactorSpec(
            "pead", post_earnings_drift, ("fundamentals", "prices"), 1, 61,
            "Bernard & Thomas (1989), Post-earnings-announcement drift",
            "earnings surprise decaying with a 20-day half-life, 0 after 60 trading days",
            required_columns=("report_date",),
            required_any=("earnings_surprise", "eps_actual"),
        ),
        FactorSpec(
            "accruals", accruals_anomaly, ("fundamentals",), -1, 1,
            "Sloan (1996), Do stock prices fully reflect information in accruals and cash flows?",
            "minus (net income - operating cash flow) / total assets",
            required_columns=("net_income", "operating_cash_flow", "total_assets"),
        ),
        FactorSpec(
            "ivol", idiosyncratic_volatility, ("prices",), -1, 61,
            "Ang, Hodrick, Xing & Zhang (2006), The cross-section of volatility and expected returns",
            "minus the annualized 60-day residual volatility against the benchmark",
            needs_benchmark=True,
        ),
        FactorSpec(
            "revisions", analyst_revisions, ("fundamentals", "prices"), 1, 22,
            "Chan, Jegadeesh & Lakonishok (1996), Momentum strategies",
            "21-day change in consensus EPS over price",
            required_columns=("consensus_eps",),
        ),
        FactorSpec(
            "sentiment", news_sentiment_score, ("fundamentals",), 1, 60,
            "Tetlock (2007), Giving content to investor sentiment",
            "EWMA (span 10) of daily news sentiment",
            required_columns=("news_sentiment",),
        ),
        FactorSpec(
            "upside", valuation_upside, ("fundamentals", "prices"), 1, 253,
            "Damodaran, Investment Valuation (two-stage DCF); Gordon (1959) DDM cross-check",
            "DCF intrinsic value per share / close - 1, clipped to [-1, 3]",
            required_columns=("operating_cash_flow", "shares_outstanding"),
        ),
    )
}

FACTOR_NAMES: tuple[str, ...] = tuple(FACTORS)
EXTRA_COLUMNS: tuple[str, ...] = ("beta", "idio_vol", "intrinsic_value", "upside_ddm")
REQUIRED_LOOKBACK_DAYS: int = max(spec.lookback_days for spec in FACTORS.values())
"""Trading days of history (per ticker, including the day itself) every factor needs at a date: with
that much history the values at the date equal a full-history computation (exactly, except the
sentiment EWMA, whose infinite memory contributes less than 1e-20 after 253 days)."""


@dataclass(frozen=True)
class FactorComputation:
    """Factor values (date, ticker, sector, <factor>..., extras) and the factors dropped, with reasons.

    A dropped factor keeps its column (all null) so the layout is the same for every input.
    """

    values: pl.DataFrame
    dropped: dict[str, str]


def _missing_inputs(
    spec: FactorSpec, fundamentals: pl.DataFrame | None, present: set[str], benchmark: str, has_bench: bool
) -> str | None:
    if spec.needs_benchmark and not has_bench:
        return f"benchmark {benchmark!r} has no prices"
    if "fundamentals" not in spec.inputs:
        return None
    if fundamentals is None:
        return "no fundamentals snapshot given"
    missing = [c for c in spec.required_columns if c not in present]
    if missing:
        return f"fundamentals column(s) {missing} entirely null"
    if spec.required_any and not any(c in present for c in spec.required_any):
        return f"fundamentals columns {list(spec.required_any)} all entirely null"
    return None


def active_rows(frame: pl.LazyFrame, universe: pl.DataFrame | None, benchmark_ticker: str) -> pl.LazyFrame:
    """Keep the rows of active, non-benchmark members and attach `sector`.

    `universe` is either the securities master (ticker, sector, listed_date, delisted_date,
    is_benchmark): active when listed_date <= date < delisted_date (nulls = open-ended); or a per-date
    membership frame (date, ticker, sector[, is_active][, is_benchmark]): active when the row exists
    (and is_active). Tickers absent from the universe are dropped; a null sector becomes "Unknown".
    With `universe=None` every non-benchmark ticker is active, sector "Unknown".
    """
    frame = frame.filter(is_not_ticker(frame, benchmark_ticker))
    if universe is None:
        return frame.with_columns(sector=pl.lit("Unknown"))
    require_columns(universe, ("ticker",), "universe")
    dtype = frame.collect_schema()["ticker"]
    sector = pl.col("sector").cast(pl.String) if "sector" in universe.columns else pl.lit(None, dtype=pl.String)
    keep = pl.col("ticker").is_not_null()
    if "is_benchmark" in universe.columns:
        keep = keep & ~pl.col("is_benchmark").fill_null(False)
    if "date" in universe.columns:
        if "is_active" in universe.columns:
            keep = keep & pl.col("is_active").fill_null(False)
        members = (
            universe.filter(keep)
            .select(pl.col("date").cast(pl.Date), pl.col("ticker").cast(pl.String).cast(dtype, strict=False), sector)
            .filter(pl.col("ticker").is_not_null())
        )
        out = frame.join(members.lazy(), on=["date", "ticker"], how="inner", maintain_order="left")
    else:
        master = universe.filter(keep).select(
            pl.col("ticker").cast(pl.String).cast(dtype, strict=False),
            sector,
            (pl.col("listed_date").cast(pl.Date) if "listed_date" in universe.columns
             else pl.lit(None, dtype=pl.Date)).alias("listed"),
            (pl.col("delisted_date").cast(pl.Date) if "delisted_date" in universe.columns
             else pl.lit(None, dtype=pl.Date)).alias("delisted"),
        ).filter(pl.col("ticker").is_not_null()).unique("ticker", keep="first", maintain_order=True)
        tickers = master.get_column("ticker")

        def lookup(column: str) -> pl.Expr:
            return pl.col("ticker").replace_strict(tickers, master.get_column(column), default=None)

        listed, delisted = lookup("listed"), lookup("delisted")
        out = frame.filter(
            pl.col("ticker").is_in(tickers.implode())
            & (listed.is_null() | (listed <= pl.col("date")))
            & (delisted.is_null() | (pl.col("date") < delisted))
        ).with_columns(sector=lookup("sector"))
    return out.with_columns(pl.col("sector").fill_null("Unknown"))


def compute_factor_values(
    prices: pl.DataFrame,
    fundamentals_snapshot: pl.DataFrame | None,
    universe: pl.DataFrame | None,
    benchmark_ticker: str = "SPY",
    factors: Sequence[str] | None = None,
    valuation: ValuationParams = ValuationParams(),
) -> FactorComputation:
    """Every factor in FACTORS (or `factors`) for every (date, ticker) price row of an active member.

    Time-series steps run on each ticker's full price history (benchmark included for returns);
    cross-sectional steps (QMJ z-scores) run per date over the active members. A factor whose
    inputs are missing is dropped (column all null) with the reason in `dropped`. Output sorted by
    (date, ticker): date, ticker, sector, the FACTOR_NAMES columns, then EXTRA_COLUMNS.
    """
    names = list(FACTOR_NAMES if factors is None else factors)
    unknown = [n for n in names if n not in FACTORS]
    if unknown:
        raise ValueError(f"unknown factors {unknown}; known: {list(FACTOR_NAMES)}")
    panel = build_panel(prices, fundamentals_snapshot, benchmark_ticker)
    fundamentals = None if fundamentals_snapshot is None else panel
    has_bench = has_ticker(panel, benchmark_ticker)
    present = non_null_columns(fundamentals, SNAPSHOT_VALUE_COLUMNS + SNAPSHOT_DATE_COLUMNS)

    dropped: dict[str, str] = {}
    for n in names:
        reason = _missing_inputs(FACTORS[n], fundamentals, present, benchmark_ticker, has_bench)
        if reason is not None:
            dropped[n] = reason
    run = [n for n in names if n not in dropped]

    lf = panel.lazy()
    if has_bench:
        lf = apply_beta(lf)
    if "vsm" in run:
        lf = apply_volatility_scaled_momentum(lf)
    if "ivol" in run:
        lf = apply_idiosyncratic_volatility(lf)
    if "qmj" in run:
        lf = apply_quality_inputs(lf)
    if "pead" in run:
        calendar = trading_day_index(panel["date"])
        lf = apply_post_earnings_drift(lf, calendar, surprise_fallback=needs_surprise_fallback(panel))
    if "accruals" in run:
        lf = apply_accruals(lf)
    if "revisions" in run:
        lf = apply_analyst_revisions(lf)
    if "sentiment" in run:
        lf = apply_news_sentiment(lf)
    if "upside" in run:
        lf = apply_valuation_upside(lf, valuation)

    schema = lf.collect_schema().names()
    computed = [c for c in (*FACTOR_NAMES, *EXTRA_COLUMNS) if c in schema and (c not in FACTORS or c in run)]
    series = lf.select("date", "ticker", *computed, *[c for c in schema if c.startswith("_q_")])
    series = series.filter(is_not_ticker(series, benchmark_ticker)).collect(engine=ENGINE)
    frame = date_ordered(series).with_columns(pl.col("date").set_sorted())
    lf = active_rows(frame.lazy(), universe, benchmark_ticker)
    if "qmj" in run:
        lf = apply_quality_scores(lf)
        computed.append("qmj")
    out_cols = [pl.col("date"), pl.col("ticker").cast(pl.String), pl.col("sector")]
    for col in (*FACTOR_NAMES, *EXTRA_COLUMNS):
        out_cols.append(pl.col(col).cast(pl.Float64) if col in computed else pl.lit(None, dtype=pl.Float64).alias(col))
    values = lf.select(out_cols).collect(engine=ENGINE)
    return FactorComputation(values=values, dropped=dropped)

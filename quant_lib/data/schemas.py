"""Canonical table layouts and pandera schemas shared by every layer.

Every frame that crosses a layer boundary uses one of these layouts. Providers return them,
assets store them (one DuckDB table per asset), and `quant_lib` functions consume them.

Conventions: `date` is `pl.Date`; prices and money are float64 in the account currency;
`volume` is float64 (shares, fractional for FX/crypto); tickers are upper-case strings.
"""

from __future__ import annotations

import polars as pl

PRICE_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
}

UNIVERSE_COLUMNS: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "name": pl.String(),
    "sector": pl.String(),
    "asset_class": pl.String(),
    "listed_date": pl.Date(),
    "delisted_date": pl.Date(),
    "is_benchmark": pl.Boolean(),
}

# Raw point-in-time facts, one row per (ticker, metric, available_at): the layout of the
# files provider's fundamentals.csv and of every provider's fundamentals feed.
FUNDAMENTAL_FACT_COLUMNS: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "period_end": pl.Date(),
    "available_at": pl.Date(),
    "metric": pl.String(),
    "value": pl.Float64(),
}

QUARTERLY_METRICS: tuple[str, ...] = (
    "revenue",
    "gross_profit",
    "ebitda",
    "net_income",
    "operating_cash_flow",
    "total_assets",
    "total_debt",
    "book_equity",
    "shares_outstanding",
    "dividends",
)
EARNINGS_METRICS: tuple[str, ...] = ("eps_actual", "eps_estimate", "earnings_surprise")
"""Reported at each earnings date: actual EPS, the consensus estimate just before the report,
and the surprise (eps_actual - eps_estimate) / price at the report."""

DAILY_METRICS: tuple[str, ...] = ("consensus_eps", "news_sentiment")
"""`consensus_eps`: analysts' consensus EPS for the next report, revised on irregular dates.
`news_sentiment`: a daily news-sentiment score in [-1, 1]."""

FUNDAMENTAL_METRICS: tuple[str, ...] = QUARTERLY_METRICS + EARNINGS_METRICS + DAILY_METRICS

# The point-in-time snapshot stored by the `fundamentals` asset: one row per (date, ticker),
# the latest known value of every metric as of the close of `date`.
FUNDAMENTAL_SNAPSHOT_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "period_end": pl.Date(),
    "report_date": pl.Date(),
    **{m: pl.Float64() for m in FUNDAMENTAL_METRICS},
}


def empty_frame(columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with the given layout."""
    return pl.DataFrame(schema=columns)


def conform(df: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast `df` to a canonical layout; missing columns are an error."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"frame is missing required columns {missing}; has {df.columns}")
    return df.select([pl.col(c).cast(t, strict=False) for c, t in columns.items()])


_PANDERA_MODELS = ("PricesSchema", "UniverseSchema", "FundamentalFactsSchema")


def __getattr__(name: str):
    """The pandera models live in `pandera_schemas` (pandera + pandas take ~1.4 s to import), loaded
    on first use: `from quant_lib.data.schemas import PricesSchema` still works."""
    if name in _PANDERA_MODELS:
        from quant_lib.data import pandera_schemas

        return getattr(pandera_schemas, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

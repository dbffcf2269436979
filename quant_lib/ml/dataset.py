"""From the daily tables to meta-labeling rows: ranked bets with their features, and the
triple-barrier labels touched in a date range (seed 000 §4.3).

- ``adjusted_prices``: ``close`` = ``adj_close`` (total return, so dividends are not losses);
  ``high``/``low`` scaled by the same factor ``adj_close / close``.
- ``bet_table``: "every ranked bet" (top ``top_n`` of ``rankings`` per rebalance day, side +1,
  target = EWM daily volatility, x sqrt(max_holding) by default) with point-in-time features at the bet's start
  (``quant_lib.ml.features``; the rankings' factor z-scores, the regime's posteriors and, from the
  point-in-time fundamentals snapshot, ``news_agreement`` = side x news_sentiment and the latest
  ``earnings_surprise``).
- ``barrier_label_table``: those bets labelled by ``triple_barrier`` on the prices given, kept
  when their ``touch_date`` lies in ``[first, last]``: a daily partition holds exactly the labels
  that became known that day. Every column that is not a label column is a feature
  (``feature_columns``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import polars as pl

from quant_lib.labeling import LABEL_COLUMNS, daily_volatility, ranked_bet_events, triple_barrier
from quant_lib.ml.features import meta_features

RANKING_FACTORS = ("vsm", "bab", "qmj", "upside", "pead", "sentiment", "accruals", "ivol", "revisions")
NEWS_COLUMNS = ("news_sentiment", "earnings_surprise")
FEATURE_HISTORY_BARS = 126
"""Bars of prices before a bet that its longest feature window (``mom_126``) needs."""


@dataclass(frozen=True)
class LabelingSpec:
    """How bets are chosen and labelled (seed 000 §4.3 defaults: symmetric barriers at one daily
    volatility, a two-week vertical barrier)."""

    top_n: int = 20
    rebalance_every: int = 1
    pt_sl: tuple[float, float] = (1.0, 1.0)
    max_holding: int = 10
    vol_span: int = 50
    use_high_low: bool = False
    horizon_target: bool = True
    """Target = daily volatility x sqrt(max_holding) (the volatility over the holding period), so
    the barriers are comparable to the moves a bet can make before its vertical barrier."""

    def __post_init__(self) -> None:
        if self.top_n < 1 or self.max_holding < 1 or self.vol_span < 2 or self.rebalance_every < 1:
            raise ValueError(f"invalid LabelingSpec: {self}")

    @property
    def price_history_bars(self) -> int:
        """Price bars a label or a bet needs before its date (features, volatility, path)."""
        return max(FEATURE_HISTORY_BARS, self.vol_span) + self.max_holding + 5


def adjusted_prices(prices: pl.DataFrame) -> pl.DataFrame:
    """``date, ticker, close, high, low`` on the total-return (``adj_close``) scale."""
    if "adj_close" not in prices.columns:
        return prices.select("date", "ticker", "close", "high", "low")
    factor = pl.col("adj_close") / pl.col("close")
    return prices.select(
        "date", "ticker", pl.col("adj_close").alias("close"),
        (pl.col("high") * factor).alias("high"), (pl.col("low") * factor).alias("low"),
        *(["volume"] if "volume" in prices.columns else []),
    )  # fmt: skip


def _factor_scores(rankings: pl.DataFrame) -> pl.DataFrame:
    present = [f for f in RANKING_FACTORS if f in rankings.columns]
    return rankings.select("date", "ticker", *[pl.col(f).cast(pl.Float64).alias(f"z_{f}") for f in present])


def _news_features(table: pl.DataFrame, fundamentals: pl.DataFrame | None) -> tuple[pl.DataFrame, list[str]]:
    """``news_agreement`` = side x the day's point-in-time ``news_sentiment`` and the latest
    ``earnings_surprise`` from the fundamentals snapshot, when it has them."""
    present = [c for c in NEWS_COLUMNS if fundamentals is not None and c in fundamentals.columns]
    if not present:
        return table, []
    snapshot = fundamentals.select("date", "ticker", *[pl.col(c).cast(pl.Float64) for c in present])
    table = table.join(snapshot, on=["date", "ticker"], how="left")
    if "news_sentiment" in present:
        table = table.with_columns((pl.col("side").cast(pl.Float64) * pl.col("news_sentiment")).alias("news_agreement")).drop("news_sentiment")
    return table, ["news_agreement" if c == "news_sentiment" else c for c in present]


def bet_table(
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    regime: pl.DataFrame | None,
    spec: LabelingSpec,
    first: date | None = None,
    last: date | None = None,
    fundamentals: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Ranked bets dated in ``[first, last]`` (all when None) with their features; (frame, names)."""
    adjusted = adjusted_prices(prices)
    volatility = daily_volatility(adjusted, span=spec.vol_span)
    window = rankings
    if first is not None:
        window = window.filter(pl.col("date") >= first)
    if last is not None:
        window = window.filter(pl.col("date") <= last)
    bets = ranked_bet_events(window, volatility, spec.top_n, spec.rebalance_every)
    if spec.horizon_target:
        bets = bets.with_columns(pl.col("target") * math.sqrt(spec.max_holding))
    regime_frame = regime if regime is not None and regime.height and "regime" in regime.columns else None
    table, names = meta_features(bets, adjusted, _factor_scores(rankings), regime_frame)
    table, news = _news_features(table, fundamentals)
    return table, names + news


def barrier_label_table(
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    regime: pl.DataFrame | None,
    spec: LabelingSpec,
    first: date,
    last: date,
    fundamentals: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Labels (``LABEL_COLUMNS``) + features of the bets whose barrier was touched in ``[first, last]``,
    computed only from prices dated <= ``last``."""
    prices = prices.filter(pl.col("date") <= last)
    bets, names = bet_table(prices, rankings.filter(pl.col("date") <= last), regime, spec, fundamentals=fundamentals)
    if bets.is_empty():
        return bets.select(*[c for c in LABEL_COLUMNS if c in bets.columns], *names)
    labels = triple_barrier(adjusted_prices(prices), bets.select("date", "ticker", "side", "target"), spec.pt_sl, spec.max_holding, spec.use_high_low)
    touched = labels.filter(pl.col("touch_date").is_between(first, last))
    return touched.join(bets.select("date", "ticker", *[n for n in names if n != "target"]), on=["date", "ticker"], how="left")


def feature_columns(table: pl.DataFrame) -> list[str]:
    """The feature columns of a ``barrier_label_table`` (everything but the label columns and
    bookkeeping columns such as ``week``)."""
    return [c for c in table.columns if c not in LABEL_COLUMNS and c not in ("week", "model_version")] + ["target"]

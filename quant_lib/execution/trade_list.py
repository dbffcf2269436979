"""Trade list: target weights versus current holdings, in whole shares (polars, vectorised)."""

from __future__ import annotations

import polars as pl

TRADE_LIST_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "name": pl.String(),
    "sector": pl.String(),
    "side": pl.String(),
    "alpha_score": pl.Float64(),
    "conviction": pl.String(),
    "raw_weight": pl.Float64(),
    "final_weight": pl.Float64(),
    "current_shares": pl.Int64(),
    "target_shares": pl.Int64(),
    "shares": pl.Int64(),
    "price": pl.Float64(),
    "value": pl.Float64(),
    "reason": pl.String(),
}
"""Columns of `build_trade_list`: the dashboard trade fields of seed 000 section 5.2 (ticker, name, sector,
alpha_score, conviction, raw_weight, final_weight, shares, value, reason) plus side, current_shares,
target_shares and price. `shares` and `value` are unsigned; `side` is "BUY" or "SELL"."""


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}")
    duplicated = frame.filter(pl.col("ticker").is_duplicated())
    if duplicated.height:
        raise ValueError(f"{name} has duplicate tickers {sorted(set(duplicated['ticker'].to_list()))[:10]}")
    return frame


def conviction_labels(scores: pl.DataFrame, high: float = 0.8, medium: float = 0.5) -> pl.DataFrame:
    """ticker, alpha_score, conviction: "High" when the score's cross-sectional percentile
    rank(score) / n is >= `high`, "Medium" when >= `medium`, else "Low" (null scores: null)."""
    _require(scores, "scores", ("ticker", "score"))
    score = pl.col("score").cast(pl.Float64).fill_nan(None)
    percentile = score.rank("average") / score.count()
    return scores.select(
        pl.col("ticker"),
        score.alias("alpha_score"),
        pl.when(percentile >= high)
        .then(pl.lit("High"))
        .when(percentile >= medium)
        .then(pl.lit("Medium"))
        .when(score.is_not_null())
        .then(pl.lit("Low"))
        .alias("conviction"),
    )


def build_trade_list(
    targets: pl.DataFrame,
    holdings: pl.DataFrame,
    prices: pl.DataFrame,
    portfolio_value: float,
    scores: pl.DataFrame | None = None,
    min_trade_value: float = 100.0,
    universe: pl.DataFrame | None = None,
    max_position: float | None = None,
    max_gross_exposure: float = 1.0,
    rebalance_band: float = 0.0,
    rebalance_rate: float = 1.0,
    hold_rank: int | None = None,
) -> pl.DataFrame:
    """Orders that move `holdings` to `targets`, in whole shares.

    Inputs: `targets` (ticker, weight[, raw_weight]) long-only weights of `portfolio_value` (which
    includes cash); `holdings` (ticker, shares) whole non-negative shares; `prices` (ticker, price);
    optional `scores` (ticker, score) for alpha_score / conviction (`conviction_labels`); optional
    `universe` (ticker, name, sector).

    Rules: final_weight = min(weight, max_position); target_shares = floor(final_weight * value / price)
    (rounded toward zero, so targets never cost more than their weight); held tickers missing from
    `targets` are sold entirely. Trades worth less than `min_trade_value` are dropped, except exits.
    Buys are then scaled down (and floored) so that the positions after trading are worth at most
    max_gross_exposure * portfolio_value: with the default 1.0, cash (including sale proceeds) is never
    exceeded. No-trade band: a rebalance of a name both held and targeted whose value is below
    `rebalance_band` x portfolio_value (the gap to target) is skipped (new positions and exits always trade), which
    keeps daily re-optimisation noise out of the book. Partial adjustment: each trade moves
    `rebalance_rate` of the way to the target, ceil(rate x |target - current|) shares (at least
    one, so exits complete), the turnover-penalised trade rule of Garleanu-Pedersen (2013). Exit
    buffer: a held name missing from `targets` whose score still ranks within the best `hold_rank`
    of `scores` is kept as it is (rank hysteresis; needs `scores`). reason: "Exit" (target 0), "Capped at max position" (raw_weight > final_weight),
    "New position" (nothing held), else "Rebalance".
    Output: `TRADE_LIST_SCHEMA` columns, sells first, then by value descending.
    """
    if not portfolio_value > 0:
        raise ValueError(f"portfolio_value must be positive, got {portfolio_value}")
    if min_trade_value < 0:
        raise ValueError(f"min_trade_value must be non-negative, got {min_trade_value}")
    if not 0 < rebalance_rate <= 1:
        raise ValueError(f"rebalance_rate must be in (0, 1], got {rebalance_rate}")
    if not 0 <= rebalance_band < 1:
        raise ValueError(f"rebalance_band must be in [0, 1), got {rebalance_band}")
    frame = _targets_and_holdings(targets, holdings, prices)
    frame = _with_target_shares(frame, portfolio_value, max_position, scores, hold_rank)
    frame = _trades(frame, portfolio_value, min_trade_value, rebalance_band, rebalance_rate, max_gross_exposure)
    return _labelled(frame, scores, universe)


def _targets_and_holdings(targets: pl.DataFrame, holdings: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """One row per targeted or held ticker: weight, raw_weight, current_shares, price (validated)."""
    _require(targets, "targets", ("ticker", "weight"))
    _require(holdings, "holdings", ("ticker", "shares"))
    _require(prices, "prices", ("ticker", "price"))
    raw = pl.col("raw_weight") if "raw_weight" in targets.columns else pl.col("weight")
    target_frame = targets.select(pl.col("ticker"), pl.col("weight").cast(pl.Float64), raw.cast(pl.Float64).alias("raw_weight"))
    bad_weight = target_frame.filter(pl.col("weight").is_null() | pl.col("weight").is_nan() | (pl.col("weight") < 0))
    if bad_weight.height:
        raise ValueError(f"targets has missing or negative weights for {bad_weight['ticker'].to_list()[:10]}")

    held = holdings.select(pl.col("ticker"), pl.col("shares").cast(pl.Float64).alias("_held"))
    bad_held = held.filter(
        pl.col("_held").is_null() | (pl.col("_held") < 0) | (pl.col("_held") != pl.col("_held").round(0))
    )
    if bad_held.height:
        raise ValueError(f"holdings must be whole non-negative shares; bad for {bad_held['ticker'].to_list()[:10]}")
    held = held.filter(pl.col("_held") > 0)

    frame = (
        pl.concat([target_frame.select("ticker"), held.select("ticker")])
        .unique(maintain_order=True)
        .join(target_frame, on="ticker", how="left")
        .join(held, on="ticker", how="left")
        .join(prices.select(pl.col("ticker"), pl.col("price").cast(pl.Float64)), on="ticker", how="left")
        .with_columns(
            pl.col("weight").fill_null(0.0),
            pl.col("raw_weight").fill_null(0.0),
            pl.col("_held").fill_null(0.0).cast(pl.Int64).alias("current_shares"),
        )
    )
    bad_price = frame.filter(pl.col("price").is_null() | pl.col("price").is_nan() | (pl.col("price") <= 0))
    if bad_price.height:
        raise ValueError(f"no positive price for {bad_price['ticker'].to_list()[:10]}")
    return frame


def _with_target_shares(
    frame: pl.DataFrame, portfolio_value: float, max_position: float | None,
    scores: pl.DataFrame | None, hold_rank: int | None,
) -> pl.DataFrame:
    """final_weight (capped) and target_shares (floored); held names still ranked within
    `hold_rank` keep their shares (exit buffer)."""
    final_weight = (
        pl.col("weight") if max_position is None else pl.min_horizontal(pl.col("weight"), pl.lit(max_position))
    )
    frame = frame.with_columns(final_weight.alias("final_weight")).with_columns(
        (pl.col("final_weight") * portfolio_value / pl.col("price") + 1e-9)
        .floor()
        .cast(pl.Int64)
        .alias("target_shares")
    )
    if hold_rank is None or scores is None:
        return frame
    ranks = scores.select("ticker", pl.col("score").cast(pl.Float64).fill_nan(None).rank("ordinal", descending=True).alias("_rank"))
    kept = (pl.col("weight") == 0) & (pl.col("current_shares") > 0) & (pl.col("_rank") <= hold_rank)
    return frame.join(ranks, on="ticker", how="left").with_columns(
        pl.when(kept.fill_null(False)).then(pl.col("current_shares")).otherwise(pl.col("target_shares")).alias("target_shares")
    ).drop("_rank")


def _trades(
    frame: pl.DataFrame, portfolio_value: float, min_trade_value: float, rebalance_band: float,
    rebalance_rate: float, max_gross_exposure: float,
) -> pl.DataFrame:
    """Signed share trades `_trade`: partial adjustment, no-trade band, minimum trade value, and
    buys scaled down to the cash budget."""
    gap = pl.col("target_shares") - pl.col("current_shares")
    trade = gap.sign() * (gap.abs().cast(pl.Float64) * rebalance_rate - 1e-9).ceil().cast(pl.Int64)
    is_exit = (pl.col("target_shares") == 0) & (pl.col("current_shares") > 0)
    big_enough = (pl.col("_trade").abs() * pl.col("price") >= min_trade_value) | is_exit
    held_value = frame.select((pl.col("current_shares") * pl.col("price")).sum()).item()
    in_band = (
        (pl.col("current_shares") > 0) & (pl.col("target_shares") > 0)
        & (gap.abs() * pl.col("price") < rebalance_band * portfolio_value)
    )
    frame = frame.with_columns(trade.alias("_trade")).filter((pl.col("_trade") != 0) & big_enough & ~in_band)
    signed_value = pl.col("_trade") * pl.col("price")
    sells = frame.select(pl.when(pl.col("_trade") < 0).then(signed_value).otherwise(0.0).sum()).item()
    buys = frame.select(pl.when(pl.col("_trade") > 0).then(signed_value).otherwise(0.0).sum()).item()
    budget = max_gross_exposure * portfolio_value - (held_value + sells)
    if buys <= budget + 1e-6:
        return frame
    scale = max(budget, 0.0) / buys
    return frame.with_columns(
        pl.when(pl.col("_trade") > 0)
        .then((pl.col("_trade") * scale).floor().cast(pl.Int64))
        .otherwise(pl.col("_trade"))
        .alias("_trade")
    ).filter((pl.col("_trade") != 0) & big_enough)


def _labelled(frame: pl.DataFrame, scores: pl.DataFrame | None, universe: pl.DataFrame | None) -> pl.DataFrame:
    """Conviction, name, sector, side, reason: the `TRADE_LIST_SCHEMA` layout, sells first."""
    if scores is not None:
        frame = frame.join(conviction_labels(scores), on="ticker", how="left")
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("alpha_score"), pl.lit(None, dtype=pl.String).alias("conviction")
        )
    if universe is not None:
        _require(universe, "universe", ("ticker",))
        info = universe.select(
            pl.col("ticker"),
            (pl.col("name") if "name" in universe.columns else pl.lit(None)).cast(pl.String).alias("name"),
            (pl.col("sector") if "sector" in universe.columns else pl.lit(None)).cast(pl.String).alias("sector"),
        )
        frame = frame.join(info, on="ticker", how="left")
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.String).alias("name"), pl.lit(None, dtype=pl.String).alias("sector")
        )
    reason = (
        pl.when((pl.col("current_shares") + pl.col("_trade")) == 0)
        .then(pl.lit("Exit"))
        .when(pl.col("raw_weight") > pl.col("final_weight") + 1e-12)
        .then(pl.lit("Capped at max position"))
        .when(pl.col("current_shares") == 0)
        .then(pl.lit("New position"))
        .otherwise(pl.lit("Rebalance"))
    )
    return (
        frame.with_columns(
            pl.when(pl.col("_trade") > 0).then(pl.lit("BUY")).otherwise(pl.lit("SELL")).alias("side"),
            (pl.col("current_shares") + pl.col("_trade")).alias("target_shares"),
            pl.col("_trade").abs().alias("shares"),
            (pl.col("_trade").abs() * pl.col("price")).alias("value"),
            reason.alias("reason"),
        )
        .select([pl.col(c).cast(t) for c, t in TRADE_LIST_SCHEMA.items()])
        .sort(["side", "value"], descending=[True, True])
    )

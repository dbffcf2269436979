"""Parameterized reads of a snapshot into plain rows (no string-built values, NaN as null)."""

from __future__ import annotations

import math
from datetime import date, time
from typing import Any

import polars as pl

from quant_resources.snapshots import Snapshot

RANKING_FIELDS = ("vsm", "bab", "qmj", "upside", "pead", "sentiment")
TRADE_FIELDS = (
    "ticker", "name", "sector", "side", "alpha_score", "conviction", "raw_weight", "final_weight", "shares",
    "price", "value", "reason",
)
ROW_LIMIT = 500
"""Most rows an endpoint returns from an optional table (model predictions, fills)."""


class NotFound(LookupError):
    """The thing asked for is not in the snapshot (404)."""


def clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as dicts, non-finite floats as None."""
    return [{k: clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def require_table(snapshot: Snapshot, table: str, hint: str) -> None:
    if not snapshot.has_table(table):
        raise NotFound(f"the snapshot {snapshot.snapshot_id} has no `{table}` table: {hint}")


def select_columns(snapshot: Snapshot, table: str, wanted: tuple[str, ...]) -> str:
    """`"a", "b", null as "c"` for the wanted columns (null where the table lacks one)."""
    present = set(snapshot.columns(table))
    return ", ".join(f'"{c}"' if c in present else f'null as "{c}"' for c in wanted)


def ranking_models(snapshot: Snapshot) -> list[str]:
    require_table(snapshot, "rankings", "run the daily job")
    return snapshot.query("select distinct model_name from rankings order by 1")["model_name"].to_list()


def rankings(snapshot: Snapshot, model: str | None, limit: int) -> tuple[str, list[dict]]:
    models = ranking_models(snapshot)
    model = model or (models[0] if models else "")
    if model not in models:
        raise NotFound(f"unknown model {model!r}: the snapshot has rankings for {models}")
    factors = select_columns(snapshot, "rankings", RANKING_FIELDS)
    frame = snapshot.query(
        f'select "rank", ticker, score, "date", model_name as model, regime, {factors} from rankings '
        'where model_name = ? and "date" = (select max("date") from rankings where model_name = ?) '
        'order by "rank", ticker limit ?',
        [model, model, limit],
    )
    return model, rows(frame)


def portfolio_models(snapshot: Snapshot) -> list[dict]:
    require_table(snapshot, "portfolio_targets", "run the daily job")
    return rows(snapshot.query(
        'select model_name as model, max("date") as date, count(*) as positions, sum(weight) as gross_weight '
        'from portfolio_targets where "date" = (select max("date") from portfolio_targets) group by 1 order by 1'
    ))


def portfolio(snapshot: Snapshot, model: str | None) -> dict:
    models = [p["model"] for p in portfolio_models(snapshot)]
    model = model or (models[0] if models else "")
    if model not in models:
        raise NotFound(f"unknown model {model!r}: the snapshot has portfolios {models}")
    frame = snapshot.query(
        'select "date", ticker, sector, weight, raw_weight, score, method_used, leverage from portfolio_targets '
        'where model_name = ? and "date" = (select max("date") from portfolio_targets where model_name = ?) '
        "order by weight desc, ticker",
        [model, model],
    )
    sectors = (
        frame.group_by(pl.col("sector").fill_null("Unknown")).agg(pl.col("weight").sum())
        .sort("weight", descending=True)
    )
    return {
        "model": model,
        "date": frame["date"][0],
        "method_used": frame["method_used"][0],
        "leverage": clean(frame["leverage"][0]),
        "gross_weight": float(frame["weight"].sum()),
        "positions": rows(frame.select("ticker", "sector", "weight", "raw_weight", "score")),
        "sectors": rows(sectors),
    }


def latest_risk(snapshot: Snapshot) -> pl.DataFrame:
    require_table(snapshot, "risk_report", "run the daily job")
    frame = snapshot.query(
        'select * from risk_report where "date" = (select max("date") from risk_report) order by component_var desc, ticker'
    )
    if frame.is_empty():
        raise NotFound("the risk report is empty")
    return frame


def trades(snapshot: Snapshot) -> tuple[date, list[dict]]:
    require_table(snapshot, "trade_list", "run the daily job")
    columns = select_columns(snapshot, "trade_list", TRADE_FIELDS)
    frame = snapshot.query(
        f'select "date", {columns} from trade_list where "date" = (select max("date") from trade_list) '
        "order by abs(value) desc nulls last, ticker"
    )
    if frame.is_empty():
        newest = snapshot.query('select max("date") d from trade_list')["d"][0]
        return newest or snapshot.manifest.as_of, []
    return frame["date"][0], rows(frame.drop("date"))


def regime_history(snapshot: Snapshot, days: int = 120) -> list[dict]:
    if not snapshot.has_table("regime"):
        return []
    return rows(snapshot.query(
        'select "date", regime, p_bull, p_bear, confidence from regime order by "date" desc limit ?', [days]
    ).reverse())


def attribution(snapshot: Snapshot) -> dict | None:
    """Weight-averaged sector-neutral z-scores of the target book, grouped as in the seed's dashboard:
    value = DCF upside, momentum = VSM, quality = QMJ, low risk = BAB, sentiment."""
    if not (snapshot.has_table("portfolio_targets") and snapshot.has_table("factor_scores")):
        return None
    names = {"value": "z_upside", "momentum": "z_vsm", "quality": "z_qmj", "low_risk": "z_bab", "sentiment": "z_sentiment"}
    present = set(snapshot.columns("factor_scores"))
    terms = ", ".join(
        (f'sum(t.weight * s."{col}") / nullif(sum(t.weight), 0) as {key}' if col in present else f"null as {key}")
        for key, col in names.items()
    )
    frame = snapshot.query(
        f"select {terms} from portfolio_targets t join factor_scores s using (\"date\", ticker) "
        'where t."date" = (select max("date") from portfolio_targets)'
    )
    return rows(frame)[0] if frame.height else None


def optional_rows(snapshot: Snapshot, table: str, order: str | None = None) -> tuple[bool, list[dict]]:
    if not snapshot.has_table(table):
        return False, []
    columns = snapshot.columns(table)
    order_by = next((c for c in (order, "timestamp", "date", "week") if c and c in columns), None)
    sql = f'select * from "{table}"' + (f' order by "{order_by}" desc' if order_by else "") + " limit ?"
    return True, rows(snapshot.query(sql, [ROW_LIMIT]))


def known_ticker(snapshot: Snapshot, ticker: str) -> None:
    require_table(snapshot, "factor_values", "run the daily job")
    hit = snapshot.query("select count(*) n from factor_values where ticker = ?", [ticker])["n"][0]
    if not hit:
        raise NotFound(f"unknown ticker {ticker!r}: not in the snapshot's factor values")


def valuation(snapshot: Snapshot, ticker: str) -> dict:
    known_ticker(snapshot, ticker)
    factors = snapshot.query(
        f'select "date", {select_columns(snapshot, "factor_values", ("intrinsic_value", "upside", "upside_ddm"))} '
        "from factor_values where ticker = ? order by \"date\" desc limit 1",
        [ticker],
    )
    result = rows(factors)[0]
    inputs: dict[str, Any] = {}
    if snapshot.has_table("fundamentals"):
        fundamentals = snapshot.query('select * from fundamentals where ticker = ? order by "date" desc limit 1', [ticker])
        if fundamentals.height:
            numeric = [c for c, t in fundamentals.schema.items() if t.is_numeric()]
            inputs = rows(fundamentals.select(numeric))[0]
    price = None
    if snapshot.has_table("prices"):
        found = snapshot.query('select close from prices where ticker = ? order by "date" desc limit 1', [ticker])
        price = clean(found["close"][0]) if found.height else None
    return {
        "ticker": ticker, "date": result["date"], "price": price, "intrinsic_value": result["intrinsic_value"],
        "upside_dcf": result["upside"], "upside_ddm": result["upside_ddm"], "inputs": inputs,
    }


def backtest(snapshot: Snapshot, start_year: int | None, end_year: int | None, strategies: list[str] | None) -> dict:
    require_table(snapshot, "backtests", "run the weekly research job (`make backtest`)")
    week = snapshot.query("select max(week) w from backtests")["w"][0]
    if week is None:
        raise NotFound("no backtest has been published yet: run `make backtest`")
    results = snapshot.query(
        "select strategy, start_date, end_date, sharpe, deflated_sharpe, annualized_return, total_return, "
        "max_drawdown, volatility, cast(n_trials as bigint) as n_trials, run_id from backtests where week = ? order by strategy",
        [week],
    )
    known = results["strategy"].to_list()
    unknown = sorted(set(strategies or []) - set(known))
    if unknown:
        raise NotFound(f"unknown strategies {unknown}: the latest backtest has {known}")
    chosen = strategies or known
    results = results.filter(pl.col("strategy").is_in(chosen))
    equity: list[dict] = []
    if snapshot.has_table("backtest_equity"):
        first = date(start_year, 1, 1) if start_year else date.min
        last = date(end_year, 12, 31) if end_year else date.max
        equity = rows(snapshot.query(
            'select strategy, "date", equity, drawdown from backtest_equity '
            'where "date" between ? and ? and list_contains(?, strategy) order by strategy, "date"',
            [first, last, chosen],
        ))
    top_n = None
    if snapshot.has_table("backtest_config"):
        found = snapshot.query("select top_n from backtest_config where week = ? and top_n is not null limit 1", [week])
        top_n = int(found["top_n"][0]) if found.height else None
    return {"week": week, "top_n": top_n, "strategies": rows(results), "equity": equity}


def tearsheet_html(snapshot: Snapshot) -> str:
    require_table(snapshot, "tearsheets", "run the weekly research job (`make backtest`)")
    found = snapshot.query("select html from tearsheets order by week desc limit 1")
    if not found.height:
        raise NotFound("no tear sheet has been published yet")
    return found["html"][0]

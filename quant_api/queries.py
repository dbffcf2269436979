"""Parameterized reads of a snapshot into plain rows (no string-built values, NaN as null)."""

from __future__ import annotations

import math
from datetime import date, time, timedelta
from decimal import Decimal
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
    """A JSON-safe value: non-finite floats as None, times as HH:MM, durations in seconds,
    decimals as floats, binary blobs (model checkpoints) as their size, containers recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str, date)):
        return value
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return clean(float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return str(value)


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as dicts, non-finite floats as None."""
    return [{k: clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def copies(found) -> list[dict[str, Any]]:
    """Fresh dicts of memoized snapshot rows (safe to change)."""
    return [dict(row) for row in found]


def require_table(snapshot: Snapshot, table: str, hint: str) -> None:
    if not snapshot.has_table(table):
        raise NotFound(f"the snapshot {snapshot.snapshot_id} has no `{table}` table: {hint}")


def select_columns(snapshot: Snapshot, table: str, wanted: tuple[str, ...]) -> str:
    """`"a", "b", null as "c"` for the wanted columns (null where the table lacks one)."""
    present = set(snapshot.columns(table))
    return ", ".join(f'"{c}"' if c in present else f'null as "{c}"' for c in wanted)


def ranking_models(snapshot: Snapshot) -> list[str]:
    require_table(snapshot, "rankings", "run the daily job")
    return [r["model_name"] for r in snapshot.rows("select distinct model_name from rankings order by 1")]


def rankings(snapshot: Snapshot, model: str | None, limit: int) -> tuple[str, list[dict]]:
    models = ranking_models(snapshot)
    model = model or (models[0] if models else "")
    if model not in models:
        raise NotFound(f"unknown model {model!r}: the snapshot has rankings for {models}")
    factors = select_columns(snapshot, "rankings", RANKING_FIELDS)
    found = snapshot.rows(
        f'select "rank", ticker, score, "date", model_name as model, regime, {factors} from rankings '
        'where model_name = ? and "date" = (select max("date") from rankings where model_name = ?) '
        'order by "rank", ticker limit ?',
        [model, model, limit],
    )
    return model, copies(found)


def portfolio_models(snapshot: Snapshot) -> list[dict]:
    require_table(snapshot, "portfolio_targets", "run the daily job")
    return copies(snapshot.rows(
        'select model_name as model, max("date") as date, count(*) as positions, sum(weight) as gross_weight '
        'from portfolio_targets where "date" = (select max("date") from portfolio_targets) group by 1 order by 1'
    ))


def portfolio(snapshot: Snapshot, model: str | None) -> dict:
    models = [p["model"] for p in portfolio_models(snapshot)]
    model = model or (models[0] if models else "")
    if model not in models:
        raise NotFound(f"unknown model {model!r}: the snapshot has portfolios {models}")
    latest = 'model_name = ? and "date" = (select max("date") from portfolio_targets where model_name = ?)'
    positions = snapshot.rows(
        f'select "date", ticker, sector, weight, raw_weight, score, method_used, leverage from portfolio_targets '
        f"where {latest} order by weight desc, ticker",
        [model, model],
    )
    sectors = snapshot.rows(
        f"select coalesce(sector, 'Unknown') as sector, sum(weight) as weight from portfolio_targets "
        f"where {latest} group by 1 order by 2 desc, 1",
        [model, model],
    )
    first = positions[0]
    return {
        "model": model,
        "date": first["date"],
        "method_used": first["method_used"],
        "leverage": first["leverage"],
        "gross_weight": float(sum(p["weight"] or 0.0 for p in positions)),
        "positions": [{k: p[k] for k in ("ticker", "sector", "weight", "raw_weight", "score")} for p in positions],
        "sectors": copies(sectors),
    }


def latest_risk(snapshot: Snapshot) -> list[dict]:
    require_table(snapshot, "risk_report", "run the daily job")
    found = snapshot.rows(
        'select * from risk_report where "date" = (select max("date") from risk_report) '
        "order by component_var desc nulls last, ticker"
    )
    if not found:
        raise NotFound("the risk report is empty")
    return copies(found)


def trades(snapshot: Snapshot) -> tuple[date, list[dict]]:
    require_table(snapshot, "trade_list", "run the daily job")
    newest = snapshot.rows('select max("date") as d from trade_list')[0]["d"] or snapshot.manifest.as_of
    columns = select_columns(snapshot, "trade_list", TRADE_FIELDS)
    found = snapshot.rows(
        f'select {columns} from trade_list where "date" = ? order by abs(value) desc nulls last, ticker', [newest]
    )
    return newest, copies(found)


def regime_history(snapshot: Snapshot, days: int = 120) -> list[dict]:
    if not snapshot.has_table("regime"):
        return []
    found = snapshot.rows(
        'select "date", regime, p_bull, p_bear, confidence from regime order by "date" desc limit ?', [days]
    )
    return copies(reversed(found))


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
    found = snapshot.rows(
        f"select {terms} from portfolio_targets t join factor_scores s using (\"date\", ticker) "
        'where t."date" = (select max("date") from portfolio_targets)'
    )
    return dict(found[0]) if found else None


def optional_rows(snapshot: Snapshot, table: str, order: str | None = None) -> tuple[bool, list[dict]]:
    if not snapshot.has_table(table):
        return False, []
    columns = snapshot.columns(table)
    order_by = next((c for c in (order, "timestamp", "date", "week") if c and c in columns), None)
    sql = f'select * from "{table}"' + (f' order by "{order_by}" desc' if order_by else "") + " limit ?"
    return True, [{k: clean(v) for k, v in row.items()} for row in snapshot.rows(sql, [ROW_LIMIT])]


def known_ticker(snapshot: Snapshot, ticker: str) -> None:
    require_table(snapshot, "factor_values", "run the daily job")
    hit = snapshot.rows("select count(*) as n from factor_values where ticker = ?", [ticker])[0]["n"]
    if not hit:
        raise NotFound(f"unknown ticker {ticker!r}: not in the snapshot's factor values")


def valuation(snapshot: Snapshot, ticker: str) -> dict:
    known_ticker(snapshot, ticker)
    columns = select_columns(snapshot, "factor_values", ("intrinsic_value", "upside", "upside_ddm"))
    result = snapshot.rows(f'select "date", {columns} from factor_values where ticker = ? order by "date" desc limit 1', [ticker])[0]
    inputs: dict[str, Any] = {}
    if snapshot.has_table("fundamentals"):
        found = snapshot.rows('select * from fundamentals where ticker = ? order by "date" desc limit 1', [ticker])
        if found:
            inputs = {k: None if v is None else float(v) for k, v in found[0].items() if _numeric_or_null(v)}
    price = None
    if snapshot.has_table("prices"):
        found = snapshot.rows('select close from prices where ticker = ? order by "date" desc limit 1', [ticker])
        price = found[0]["close"] if found else None
    return {
        "ticker": ticker, "date": result["date"], "price": price, "intrinsic_value": result["intrinsic_value"],
        "upside_dcf": result["upside"], "upside_ddm": result["upside_ddm"], "inputs": inputs,
    }


def _numeric_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def backtest(snapshot: Snapshot, start_year: int | None, end_year: int | None, strategies: list[str] | None) -> dict:
    require_table(snapshot, "backtests", "run the weekly research job (`make backtest`)")
    week = snapshot.rows("select max(week) as w from backtests")[0]["w"]
    if week is None:
        raise NotFound("no backtest has been published yet: run `make backtest`")
    results = snapshot.rows(
        "select strategy, start_date, end_date, sharpe, deflated_sharpe, annualized_return, total_return, "
        "max_drawdown, volatility, cast(n_trials as bigint) as n_trials, run_id from backtests where week = ? order by strategy",
        [week],
    )
    known = [r["strategy"] for r in results]
    unknown = sorted(set(strategies or []) - set(known))
    if unknown:
        raise NotFound(f"unknown strategies {unknown}: the latest backtest has {known}")
    chosen = strategies or known
    equity: list[dict] = []
    if snapshot.has_table("backtest_equity"):
        first = date(start_year, 1, 1) if start_year else date.min
        last = date(end_year, 12, 31) if end_year else date.max
        equity = copies(snapshot.rows(
            'select strategy, "date", equity, drawdown from backtest_equity '
            'where "date" between ? and ? and list_contains(?, strategy) order by strategy, "date"',
            [first, last, sorted(chosen)],
        ))
    top_n = None
    if snapshot.has_table("backtest_config"):
        found = snapshot.rows("select top_n from backtest_config where week = ? and top_n is not null limit 1", [week])
        top_n = int(found[0]["top_n"]) if found else None
    strategies_found = [dict(r) for r in results if r["strategy"] in chosen]
    return {"week": week, "top_n": top_n, "strategies": strategies_found, "equity": equity}


def tearsheet_html(snapshot: Snapshot) -> str:
    require_table(snapshot, "tearsheets", "run the weekly research job (`make backtest`)")
    found = snapshot.rows("select html from tearsheets order by week desc limit 1")
    if not found:
        raise NotFound("no tear sheet has been published yet")
    return found[0]["html"]

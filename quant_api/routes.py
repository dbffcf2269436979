"""The `/quant` endpoints (seed 000 §5.1, payloads of §5.2). Plain `def` handlers: DuckDB work
runs in the thread pool, never on the event loop."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from quant_api import queries
from quant_api.models import (
    BacktestLaunch,
    BacktestRequest,
    BacktestRun,
    DashboardSummary,
    ErrorResponse,
    LiveStatus,
    MlSignals,
    Portfolio,
    Portfolios,
    Rankings,
    RiskMetrics,
    TableRows,
    Trades,
    Valuation,
    Vwap,
)
from quant_lib.execution.vwap import square_root_impact_bps, vwap_schedule
from quant_resources.snapshots import Snapshot, SnapshotError

logger = logging.getLogger("quant_api")
router = APIRouter(prefix="/quant", tags=["quant"])
ERRORS = {404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
TICKER_PATTERN = r"^[A-Za-z0-9.\-=^]{1,15}$"
BASE_TARGET_VOL = 0.15
HEDGE_OTM = 0.20
REGIME_STATES = {"Bull": "AGGRESSIVE", "Bear": "DEFENSIVE"}


async def snapshot(request: Request) -> Snapshot:
    """The published snapshot (async: a pointer read and a cached connection, no thread hop)."""
    try:
        return request.app.state.reader.current()
    except SnapshotError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


SnapshotDep = Annotated[Snapshot, Depends(snapshot)]
ModelParam = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Model name (default: the first).")]


def invalid(location: str, name: str, value, message: str) -> RequestValidationError:
    """A 422 in FastAPI's validation-error shape, naming the parameter."""
    return RequestValidationError([{"type": "value_error", "loc": (location, name), "msg": message, "input": value}])


def ids(snap: Snapshot) -> dict:
    return {"as_of": snap.manifest.as_of, "snapshot_id": snap.snapshot_id}


@router.get("/rankings", response_model=Rankings, responses=ERRORS, summary="Latest factor rankings")
def rankings(
    snap: SnapshotDep, model: ModelParam = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Rankings:
    name, found = queries.rankings(snap, model, limit)
    return Rankings(model=name, count=len(found), rankings=found, **ids(snap))


@router.get("/portfolio", response_model=Portfolio, responses=ERRORS, summary="Target weights of one portfolio model")
def portfolio(snap: SnapshotDep, model: ModelParam = None) -> Portfolio:
    return Portfolio(**queries.portfolio(snap, model), **ids(snap))


@router.get("/portfolios", response_model=Portfolios, responses=ERRORS, summary="Every portfolio model")
def portfolios(snap: SnapshotDep) -> Portfolios:
    return Portfolios(portfolios=queries.portfolio_models(snap), **ids(snap))


@router.get("/risk/metrics", response_model=RiskMetrics, responses=ERRORS, summary="VaR, component VaR and hedge cost")
def risk_metrics(
    snap: SnapshotDep,
    portfolio_value: Annotated[float, Query(gt=0, le=1e13, description="Portfolio value (account currency).")] = 1_000_000.0,
    volatility: Annotated[
        float | None, Query(ge=0.01, le=5, description="Annual volatility to price the hedge (default: the report's estimate).")
    ] = None,
) -> RiskMetrics:
    report = queries.latest_risk(snap)
    first = report[0]
    scale = portfolio_value / first["portfolio_value"] if first["portfolio_value"] else 1.0
    var = {
        "portfolio_var": first["portfolio_var"] * scale,
        "portfolio_var_pct": first["portfolio_var_pct"],
        "historical_var_pct": first["historical_var_pct"],
        "historical_cvar_pct": first["historical_cvar_pct"],
        "confidence_limit_pct": first["var_limit"],
        "limit_status": first["limit_status"],
        "component_var": [(r["component_var"] or 0.0) * scale for r in report],
        "weights": [r["weight"] or 0.0 for r in report],
        "tickers": [r["ticker"] for r in report],
    }
    return RiskMetrics(
        date=first["date"], portfolio_value=portfolio_value, var=var, hedge=_hedge(first, portfolio_value, scale, volatility),
        **ids(snap),
    )


def _hedge(first: dict, portfolio_value: float, scale: float, volatility: float | None) -> dict | None:
    if first.get("hedge_strike") is None or first.get("hedge_put_price") is None:
        return None
    if volatility is None:
        return {
            "put_price": first["hedge_put_price"], "strike": first["hedge_strike"],
            "total_cost": first["hedge_total_cost"] * scale, "cost_bps": first["hedge_cost_bps"],
            "annualized_cost_bps": first["hedge_annualized_cost_bps"], "volatility": None,
        }
    from quant_lib.risk.hedging import tail_hedge_cost  # quant_lib.risk imports scipy and sklearn: ~1 s

    spot = first["hedge_strike"] / (1.0 - HEDGE_OTM)
    exposure = first["hedge_total_cost"] / (first["hedge_put_price"] * first["portfolio_value"] / spot)
    return {**tail_hedge_cost(portfolio_value, spot, volatility, hedge_fraction=exposure, otm_pct=HEDGE_OTM), "volatility": volatility}


@router.get("/execution/vwap", response_model=Vwap, responses=ERRORS, summary="VWAP schedule and square-root impact")
def vwap(
    snap: SnapshotDep,
    shares: Annotated[int, Query(ge=-1_000_000_000, le=1_000_000_000, description="Order size; negative sells.")],
    volume: Annotated[float, Query(gt=0, le=1e13, description="Expected daily volume (shares).")],
    volatility: Annotated[float, Query(ge=0, le=5, description="Daily volatility (fraction).")] = 0.02,
) -> Vwap:
    schedule = vwap_schedule(shares)
    impact = square_root_impact_bps(shares, volume, volatility)
    return Vwap(
        shares=shares, volume=volume, volatility=volatility, participation=abs(shares) / volume,
        expected_impact_bps=float(impact), schedule=queries.rows(schedule), **ids(snap),
    )


@router.get("/weekly/trades", response_model=Trades, responses=ERRORS, summary="Latest trade list")
def weekly_trades(snap: SnapshotDep) -> Trades:
    day, found = queries.trades(snap)
    buys = sum(t["value"] or 0.0 for t in found if (t["side"] or "").upper() == "BUY")
    sells = sum(t["value"] or 0.0 for t in found if (t["side"] or "").upper() == "SELL")
    return Trades(date=day, count=len(found), buy_value=abs(buys), sell_value=abs(sells), trades=found, **ids(snap))


@router.get("/dashboard/summary", response_model=DashboardSummary, responses=ERRORS, summary="Aggregated dashboard")
def dashboard_summary(snap: SnapshotDep) -> DashboardSummary:
    history = queries.regime_history(snap)
    regime = None
    if history:
        latest = history[-1]
        confidence = latest["confidence"]
        multiplier = _confidence_multiplier(latest["regime"], confidence)
        regime = {
            "state": REGIME_STATES.get(latest["regime"], "NEUTRAL"), "label": latest["regime"],
            "confidence_score": confidence, "confidence_multiplier": multiplier,
            "base_target_vol": BASE_TARGET_VOL, "adjusted_target_vol": BASE_TARGET_VOL * multiplier, "history": history,
        }
    found = queries.trades(snap)[1] if snap.has_table("trade_list") else []
    return DashboardSummary(
        regime=regime, attribution=queries.attribution(snap), trades=found,
        generated_at=snap.manifest.published_at, **ids(snap),
    )


def _confidence_multiplier(label: str, confidence: float | None) -> float:
    """Risk budget scaling of the seed's dashboard: 1 + 0.25 (2c - 1) in a Bull regime, 1 - 0.25 (2c - 1)
    in a Bear regime (c the posterior confidence), 1 otherwise; clipped to [0.75, 1.25]."""
    if confidence is None or label not in REGIME_STATES:
        return 1.0
    tilt = 0.25 * (2.0 * confidence - 1.0)
    return float(np.clip(1.0 + tilt if label == "Bull" else 1.0 - tilt, 0.75, 1.25))


@router.get("/backtest/run", response_model=BacktestRun, responses=ERRORS, summary="Latest stored backtest with benchmarks")
def backtest_run(
    snap: SnapshotDep,
    start_year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    end_year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    top_n: Annotated[int | None, Query(ge=1, le=500, description="Must match the stored run's top_n.")] = None,
    benchmarks: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$", description="Comma-separated strategies to include.")
    ] = None,
) -> BacktestRun:
    if start_year and end_year and start_year > end_year:
        raise invalid("query", "start_year", start_year, f"start_year {start_year} is after end_year {end_year}")
    chosen = None
    if benchmarks:
        queries.require_table(snap, "backtests", "run the weekly research job (`make backtest`)")
        primary = {"ranking_top_n", "portfolio_targets"} & _strategies(snap)
        chosen = sorted(primary | set(benchmarks.split(",")))
    found = queries.backtest(snap, start_year, end_year, chosen)
    if top_n is not None and found["top_n"] is not None and top_n != found["top_n"]:
        raise queries.NotFound(
            f"no stored backtest with top_n={top_n} (the latest has top_n={found['top_n']}): launch one with POST /quant/backtest"
        )
    url = "/dashboard/tearsheet" if snap.has_table("tearsheets") else None
    return BacktestRun(**found, tearsheet_url=url, **ids(snap))


def _strategies(snap: Snapshot) -> set[str]:
    return {r["strategy"] for r in snap.rows("select distinct strategy from backtests")}


@router.post(
    "/backtest", status_code=202, response_model=BacktestLaunch,
    responses={501: {"model": ErrorResponse}, 502: {"model": ErrorResponse}}, summary="Launch a backtest run in Dagster",
)
def launch_backtest(request: Request, body: BacktestRequest) -> BacktestLaunch:
    if body.start_year > body.end_year:
        raise invalid("body", "start_year", body.start_year, f"start_year {body.start_year} is after end_year {body.end_year}")
    url = request.app.state.settings.dagster_webserver_url
    if not url:
        raise HTTPException(501, detail="no Dagster webserver configured (DAGSTER_WEBSERVER_URL): run `make backtest` instead")
    partition = latest_complete_week(datetime.now(timezone.utc).date()).isoformat()
    config = {"history_years": float(body.end_year - body.start_year + 1), **({"top_n": body.top_n} if body.top_n else {})}
    try:
        run_id = submit_dagster_job(url, "weekly_research_job", partition, {"ops": {"backtests": {"config": config}}})
    except Exception as exc:  # noqa: BLE001 - any failure of the remote service is a 502
        logger.warning("backtest launch failed: %s", type(exc).__name__)
        raise HTTPException(502, detail=f"the Dagster webserver refused the run: {type(exc).__name__}") from exc
    return BacktestLaunch(run_id=run_id, job="weekly_research_job", partition=partition, status="submitted")


def latest_complete_week(today: date) -> date:
    """Saturday that starts the latest week (Saturday..Friday) that ended before `today`."""
    last_saturday = today - timedelta(days=(today.weekday() - 5) % 7)
    return last_saturday - timedelta(days=7)


def submit_dagster_job(url: str, job: str, partition: str, run_config: dict) -> str:
    """Submit `job` for `partition` through Dagster's GraphQL client; returns the run id."""
    from urllib.parse import urlparse

    from dagster_graphql import DagsterGraphQLClient

    parsed = urlparse(url)
    client = DagsterGraphQLClient(parsed.hostname or "127.0.0.1", port_number=parsed.port, use_https=parsed.scheme == "https")
    return client.submit_job_execution(job, run_config=run_config, tags={"dagster/partition": partition})


@router.get("/ml/signals", response_model=MlSignals, responses=ERRORS, summary="Meta-labeler and deep-model signals")
def ml_signals(snap: SnapshotDep) -> MlSignals:
    def table(name: str) -> TableRows:
        available, found = queries.optional_rows(snap, name)
        return TableRows(available=available, rows=found)

    return MlSignals(
        meta_labeler=table("meta_confidence"), meta_model=table("meta_model"), champions=table("meta_champion"),
        deep_models=table("model_predictions"), checkpoints=table("model_checkpoints"),
        ensemble_weights=table("ensemble_weights"), **ids(snap),
    )


@router.get("/valuation/{ticker}", response_model=Valuation, responses=ERRORS, summary="DCF / DDM inputs and upside")
def valuation(snap: SnapshotDep, ticker: Annotated[str, Path(pattern=TICKER_PATTERN)]) -> Valuation:
    return Valuation(**queries.valuation(snap, ticker.upper()), **ids(snap))


@router.get("/live/status", response_model=LiveStatus, responses=ERRORS, summary="Paper/live equity, positions, fills")
def live_status(snap: SnapshotDep) -> LiveStatus:
    has_equity, equity = queries.optional_rows(snap, "live_equity")
    has_fills, fills = queries.optional_rows(snap, "live_fills")
    positions: list[dict] = []
    if snap.has_table("holdings"):
        positions = queries.copies(snap.rows(
            'select * from holdings where "date" = (select max("date") from holdings) order by value desc nulls last'
        ))
    return LiveStatus(available=has_equity or has_fills, equity=equity[::-1], positions=positions, fills=fills, **ids(snap))

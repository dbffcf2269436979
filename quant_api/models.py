"""Response models (pydantic v2). Every payload carries the snapshot it was read from:
`as_of` (the data's date) and `snapshot_id` (the published snapshot)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(description="Date of the newest data in the snapshot.")
    snapshot_id: str | None = Field(description="Published snapshot the answer was read from.")


class ErrorResponse(BaseModel):
    detail: str


class Health(Payload):
    status: Literal["healthy"]


class Ready(Payload):
    status: Literal["ready", "not_ready"]
    reason: str | None = None
    checks: dict[str, Any]


class DependencyCheck(BaseModel):
    status: Literal["ok", "warning", "error", "not_configured"]
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)


class DeepHealth(Payload):
    status: Literal["healthy", "degraded", "unhealthy"]
    checks: dict[str, DependencyCheck]


class RankingRow(BaseModel):
    rank: int
    ticker: str
    score: float | None
    date: date
    model: str
    regime: str | None
    vsm: float | None
    bab: float | None
    qmj: float | None
    upside: float | None
    pead: float | None
    sentiment: float | None


class Rankings(Payload):
    model: str
    count: int
    rankings: list[RankingRow]


class Position(BaseModel):
    ticker: str
    sector: str | None
    weight: float
    raw_weight: float | None
    score: float | None


class SectorWeight(BaseModel):
    sector: str
    weight: float


class Portfolio(Payload):
    model: str
    date: date
    method_used: str | None
    leverage: float | None
    gross_weight: float
    positions: list[Position]
    sectors: list[SectorWeight]


class PortfolioSummary(BaseModel):
    model: str
    date: date
    positions: int
    gross_weight: float


class Portfolios(Payload):
    portfolios: list[PortfolioSummary]


class VaR(BaseModel):
    portfolio_var: float
    portfolio_var_pct: float | None
    historical_var_pct: float | None
    historical_cvar_pct: float | None
    confidence_limit_pct: float | None
    limit_status: str | None
    component_var: list[float]
    weights: list[float]
    tickers: list[str]


class Hedge(BaseModel):
    put_price: float
    strike: float
    total_cost: float
    cost_bps: float
    annualized_cost_bps: float
    volatility: float | None = Field(description="Volatility priced (null: the risk report's own estimate).")


class RiskMetrics(Payload):
    date: date
    portfolio_value: float
    var: VaR
    hedge: Hedge | None


class VwapSlice(BaseModel):
    slice_start: str
    shares: int
    pct: float


class Vwap(Payload):
    shares: int
    volume: float
    volatility: float
    participation: float
    expected_impact_bps: float
    schedule: list[VwapSlice]


class Trade(BaseModel):
    ticker: str
    name: str | None
    sector: str | None
    side: str | None
    alpha_score: float | None
    conviction: str | None
    raw_weight: float | None
    final_weight: float | None
    shares: int
    price: float | None
    value: float | None
    reason: str | None


class Trades(Payload):
    date: date
    count: int
    buy_value: float
    sell_value: float
    trades: list[Trade]


class RegimeSummary(BaseModel):
    state: str
    label: str
    confidence_score: float | None
    confidence_multiplier: float
    base_target_vol: float
    adjusted_target_vol: float
    history: list[dict[str, Any]]


class Attribution(BaseModel):
    value: float | None
    momentum: float | None
    quality: float | None
    low_risk: float | None
    sentiment: float | None


class DashboardSummary(Payload):
    regime: RegimeSummary | None
    attribution: Attribution | None
    trades: list[Trade]
    generated_at: datetime


class StrategyResult(BaseModel):
    strategy: str
    start_date: date | None
    end_date: date | None
    sharpe: float | None
    deflated_sharpe: float | None
    annualized_return: float | None
    total_return: float | None
    max_drawdown: float | None
    volatility: float | None
    n_trials: int | None
    run_id: str | None


class EquityPoint(BaseModel):
    strategy: str
    date: date
    equity: float
    drawdown: float


class BacktestRun(Payload):
    week: date
    top_n: int | None
    strategies: list[StrategyResult]
    equity: list[EquityPoint]
    tearsheet_url: str | None


class BacktestLaunch(BaseModel):
    run_id: str
    job: str
    partition: str
    status: Literal["submitted"]


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_year: int = Field(ge=1990, le=2100)
    end_year: int = Field(ge=1990, le=2100)
    top_n: int | None = Field(None, ge=1, le=500)


class TableRows(BaseModel):
    available: bool
    rows: list[dict[str, Any]]


class MlSignals(Payload):
    meta_labeler: TableRows = Field(description="Latest meta-labeler confidences and bet sizes (`meta_confidence`).")
    meta_model: TableRows = Field(description="Latest weekly meta-model fit: version, validation metrics (`meta_model`).")
    champions: TableRows = Field(description="Champion/challenger decisions per week (`meta_champion`).")
    deep_models: TableRows = Field(description="Latest deep-model predictions of the champions (`model_predictions`).")
    checkpoints: TableRows = Field(description="Latest deep-model checkpoints and validation metrics (`model_checkpoints`).")
    ensemble_weights: TableRows


class Valuation(Payload):
    ticker: str
    date: date
    price: float | None
    intrinsic_value: float | None
    upside_dcf: float | None
    upside_ddm: float | None
    inputs: dict[str, float | None]


class LiveStatus(Payload):
    available: bool
    equity: list[dict[str, Any]]
    positions: list[dict[str, Any]]
    fills: list[dict[str, Any]]

"""Platform settings: one pydantic-settings class read from environment variables and `.env`.

Every knob has a default that works offline (the simulated market). See the README's
"Settings" table for the full list.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PlatformSettings(BaseSettings):
    """All run-time settings of the platform (env vars are the upper-case field names)."""

    model_config = SettingsConfigDict(
        env_file=str(PROJECT_ROOT / ".env"),
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
    )

    market_data_provider: Literal["simulated", "yfinance", "files"] = Field(
        "simulated", description="Where market data comes from."
    )
    market_data_dir: Path | None = Field(
        None, description="Folder of the user's CSV/Parquet files (files provider)."
    )
    warehouse_dir: Path = Field(
        PROJECT_ROOT / "warehouse", description="Root of everything the platform writes."
    )
    quant_start_date: date = Field(date(2015, 1, 1), description="First daily partition.")
    benchmark_ticker: str = Field("SPY", description="Benchmark ticker (regime, beta, reports).")
    data_freshness_threshold_hours: float = Field(
        24.0, gt=0, description="Prices older than this many trading hours are stale."
    )
    circuit_breaker_failure_threshold: int = Field(5, ge=1)
    circuit_breaker_recovery_timeout: float = Field(60.0, gt=0)
    provider_max_retries: int = Field(4, ge=0, description="Retries with exponential backoff.")
    provider_retry_base_delay: float = Field(1.0, ge=0)
    sim_seed: int = Field(42, description="Seed of the simulated market.")
    sim_n_tickers: int = Field(100, ge=5, description="Constituents of the simulated market.")
    sim_crypto: int = Field(0, ge=0, le=6, description="Simulated crypto symbols (BTC-USD, ...; trade every day).")
    sim_fx: int = Field(0, ge=0, le=6, description="Simulated FX pairs (EURUSD=X, ...; trade every weekday).")
    yfinance_tickers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "JPM", "XOM", "JNJ"],
        description="Comma-separated tickers for the yfinance provider (stocks, ETFs, BTC-USD, EURUSD=X).",
    )
    run_history_days: int = Field(
        60, ge=1, description="Trading days of daily outputs `make run` backfills before the latest day (the market lookback comes on top)."
    )
    price_min: float = Field(1e-6, gt=0, description="Prices at or below this are absurd: the row is dropped (cleaning).")
    price_max: float = Field(1e7, gt=0, description="Prices at or above this are absurd: the row is dropped (cleaning).")
    volume_max: float = Field(1e13, gt=0, description="Volumes above this are absurd: the row is dropped (cleaning).")
    market_timezone: str = Field("America/New_York", description="Exchange time zone.")
    intraday_provider: Literal["auto", "simulated", "yfinance", "files", "ccxt", "alpaca"] = Field(
        "auto", description="Source of intraday bars (auto: MARKET_DATA_PROVIDER)."
    )
    intraday_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated intraday symbols (empty: the benchmark + the 4 most liquid tickers).",
    )
    intraday_intervals: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["5m"], description="Comma-separated intraday intervals: 1m, 5m, 15m, 1h."
    )
    intraday_history_days: int = Field(60, ge=1, description="Trading days of intraday bars `make run` materializes.")
    ccxt_exchange: str = Field("binance", description="ccxt exchange id for crypto bars (binance, kraken, ...).")
    market_calendar: str = Field(
        "XNYS", description="Trading-day calendar: an exchange-calendars code (XNYS, XLON, ...), 24/7 or 24/5."
    )
    market_close_hour: int = Field(16, ge=0, le=23, description="Local hour of the close.")
    serving_dir: Path | None = Field(None, description="Published API snapshots (default: <warehouse_dir>/serving).")
    snapshot_grace_seconds: float = Field(3600.0, ge=0, description="How long a superseded snapshot stays for its readers.")
    snapshot_max_age_hours: float = Field(96.0, gt=0, description="/ready answers 503 when the snapshot is older.")
    api_host: str = Field("127.0.0.1", description="Address the API binds to.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the API.")
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS (empty: CORS off)."
    )
    dagster_webserver_url: str | None = Field(
        None, description="Dagster webserver (e.g. http://127.0.0.1:3000) for POST /quant/backtest; unset: 501."
    )
    ml_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated symbols of the learning layer (empty: the first ML_MAX_SYMBOLS tickers of `prices`, benchmark excluded).",
    )
    ml_max_symbols: int = Field(10, ge=1, description="Symbols of the learning layer when ML_SYMBOLS is empty.")
    ml_device: str = Field("auto", description="Torch device for training: auto (CUDA > MPS > CPU), cpu, cuda, mps.")
    retrain_interval: int = Field(20, ge=1, description="Retrain sensor: trading days since the last training that trigger a retrain.")
    retrain_sharpe_threshold: float = Field(0.0, description="Retrain sensor: a model's rolling out-of-sample Sharpe below this triggers a retrain.")
    retrain_cp_score_threshold: float = Field(0.8, ge=0, le=1, description="Retrain sensor: a BOCPD cp_score above this (any ML symbol) triggers a retrain.")
    broker: Literal["paper", "alpaca"] = Field("paper", description="Broker of the daily `orders` asset: paper (state under warehouse/state/paper_broker) or alpaca (keys from APCA_API_KEY_ID / APCA_API_SECRET_KEY).")
    paper_slippage_bps: float = Field(2.0, ge=0, description="Paper broker slippage per fill, basis points.")
    paper_commission_bps: float = Field(1.0, ge=0, description="Paper broker commission per fill, basis points.")
    alpaca_unfilled_at_close: Literal["cancel", "keep"] = Field("cancel", description="Alpaca daily orders still open at `fills`: cancel (DAY orders) or keep working (GTC).")
    retrain_min_samples: int = Field(10, ge=1, description="Retrain sensor: trading days since the last training before any trigger may fire.")

    @field_validator("yfinance_tickers", mode="before")
    @classmethod
    def _split_tickers(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip().upper() for t in value.split(",") if t.strip()]
        return value

    @field_validator("intraday_symbols", "intraday_intervals", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("intraday_intervals", mode="after")
    @classmethod
    def _known_intervals(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ("1m", "5m", "15m", "1h")]
        if unknown:
            raise ValueError(f"INTRADAY_INTERVALS: unsupported {unknown}; use 1m, 5m, 15m, 1h")
        return value

    @field_validator("ml_symbols", mode="before")
    @classmethod
    def _split_ml_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip().upper() for t in value.split(",") if t.strip()]
        return value

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("warehouse_dir", "market_data_dir", "serving_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        return value if value.is_absolute() else (PROJECT_ROOT / value).resolve()

    @property
    def duckdb_path(self) -> Path:
        return self.warehouse_dir / "quant.duckdb"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.warehouse_dir / ".dagster")

    @property
    def cache_dir(self) -> Path:
        return self.warehouse_dir / "cache"

    @property
    def mlflow_dir(self) -> Path:
        return self.warehouse_dir / "mlruns"

    @property
    def reports_dir(self) -> Path:
        return self.warehouse_dir / "reports"

    @property
    def models_dir(self) -> Path:
        return self.warehouse_dir / "models"

    @property
    def state_dir(self) -> Path:
        return self.warehouse_dir / "state"

    @property
    def serving_path(self) -> Path:
        return self.serving_dir or self.warehouse_dir / "serving"


@lru_cache(maxsize=1)
def get_settings() -> PlatformSettings:
    """The process-wide settings (read once); makes MARKET_CALENDAR the default trading calendar."""
    from quant_lib.data.calendar import set_default_calendar
    from quant_resources.calendar_cache import load_session_table

    settings = PlatformSettings()
    load_session_table(settings.market_calendar, settings.cache_dir)
    set_default_calendar(settings.market_calendar)
    return settings

"""Yahoo Finance provider (stocks, ETFs, crypto pairs such as `BTC-USD`, FX such as `EURUSD=X`).

- Prices: `yf.Ticker(t).history(start, end + 1 day, interval="1d", auto_adjust=<explicit>,
  actions=False)` with yfinance told to raise instead of logging and returning an empty frame
  (`yfinance.config.debug.hide_exceptions = False`; `raise_errors=True` on versions without it).
  Timestamps become naive dates in the exchange's time zone; columns are renamed to
  PRICE_COLUMNS (`adj_close` from "Adj Close" when `auto_adjust=False`, else = close).
- Resilience: transient errors (rate limits, timeouts, connection errors) are retried with
  exponential backoff and jitter (base * 2^attempt), each attempt going through a circuit
  breaker; "no data" answers are not retried and do not trip the breaker.
- Cache: bars are kept in a Parquet cache per ticker, so a re-run downloads only missing days.
- Universe: sector and name from `Ticker.info`, best effort (sector "Unknown" on failure);
  asset class from `quoteType`, else from the symbol (`-USD` crypto, `=X` fx, else equity).
- Fundamentals: best effort from the quarterly statements, with the documented assumption
  available_at = period_end + 45 days (the SEC 10-Q deadline for most filers is 40-45 days).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_FACT_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS, empty_frame
from quant_resources.circuit_breaker import CircuitBreaker, CircuitOpenError, CircuitState, retry_with_backoff
from quant_resources.providers.base import MarketDataProvider, NoDataError, ProviderError, check_date_range
from quant_resources.providers.cache import ParquetBarCache, atomic_write_parquet, safe_file_stem

logger = logging.getLogger(__name__)

FUNDAMENTALS_LAG_DAYS = 45
"""Assumed days between a quarter's end and the public availability of its statements."""

_STATEMENT_METRICS: dict[str, tuple[str, ...]] = {
    "revenue": ("totalrevenue", "operatingrevenue"),
    "gross_profit": ("grossprofit",),
    "ebitda": ("ebitda", "normalizedebitda"),
    "net_income": ("netincome", "netincomecommonstockholders"),
    "operating_cash_flow": ("operatingcashflow", "cashflowfromcontinuingoperatingactivities"),
    "total_assets": ("totalassets",),
    "total_debt": ("totaldebt",),
    "book_equity": ("stockholdersequity", "commonstockequity"),
    "shares_outstanding": ("ordinarysharesnumber", "shareissued"),
    "dividends": ("cashdividendspaid", "commonstockdividendpaid"),
    "eps_actual": ("dilutedeps", "basiceps"),
}
"""Metric -> statement line items (lower-case, alphanumerics only), first match wins."""

_STATEMENTS = ("quarterly_income_stmt", "quarterly_balance_sheet", "quarterly_cashflow")
_QUOTE_TYPES = {"EQUITY": "equity", "ETF": "etf", "MUTUALFUND": "fund", "CRYPTOCURRENCY": "crypto",
                "CURRENCY": "fx", "INDEX": "index", "FUTURE": "future"}
_PRICE_RENAME = {"open": "open", "high": "high", "low": "low", "close": "close",
                 "adjclose": "adj_close", "volume": "volume"}


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: rate limits, timeouts, connection failures, Yahoo being down."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from yfinance.exceptions import YFDataException, YFRateLimitError

        errors += [YFRateLimitError, YFDataException]
    except ImportError:  # pragma: no cover - yfinance is a dependency
        pass
    try:
        import requests

        errors.append(requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover
        pass
    try:
        from curl_cffi.requests import exceptions as curl_exceptions

        errors.append(curl_exceptions.RequestException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _no_data_errors() -> tuple[type[BaseException], ...]:
    try:
        from yfinance.exceptions import YFTickerMissingError

        return (NoDataError, YFTickerMissingError)
    except ImportError:  # pragma: no cover
        return (NoDataError,)


TRANSIENT_ERRORS = _transient_errors()
NO_DATA_ERRORS = _no_data_errors()


def infer_asset_class(ticker: str, quote_type: str | None = None) -> str:
    """Asset class from Yahoo's quoteType, else from the symbol: `-USD` crypto, `=X` fx, else equity."""
    if quote_type and quote_type.upper() in _QUOTE_TYPES:
        return _QUOTE_TYPES[quote_type.upper()]
    symbol = ticker.upper()
    if symbol.endswith("=X"):
        return "fx"
    if re.search(r"-(USD|USDT|EUR|BTC|ETH)$", symbol):
        return "crypto"
    return "equity"


def _normalize_label(label: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower())


def history_to_frame(history: pd.DataFrame, ticker: str, auto_adjust: bool) -> pl.DataFrame:
    """Yahoo's history frame -> PRICE_COLUMNS.

    A tz-aware index becomes the calendar date in its own time zone (a bar stamped
    2024-01-02 00:00-05:00 is 2024-01-02, a crypto bar at 00:00 UTC is that UTC day).
    """
    if history is None or len(history) == 0:
        raise NoDataError(f"yfinance returned no rows for {ticker}")
    frame = history
    if not isinstance(frame.index, pd.DatetimeIndex):
        date_columns = [c for c in frame.columns if _normalize_label(c) in ("date", "datetime")]
        if not date_columns:
            raise ProviderError(f"yfinance history for {ticker} has no DatetimeIndex and no Date column")
        frame = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame[date_columns[0]], utc=False)))
    index = frame.index
    if index.tz is not None:
        index = index.tz_localize(None)
    dates = pl.Series("date", index.normalize().to_numpy()).dt.date()
    columns = {_normalize_label(c): c for c in frame.columns}
    missing = [name for name in ("open", "high", "low", "close", "volume") if name not in columns]
    if missing:
        raise ProviderError(f"yfinance history for {ticker} lacks columns {missing}; got {list(frame.columns)}")
    data: dict[str, Any] = {"date": dates, "ticker": [ticker] * len(frame)}
    for key, target in _PRICE_RENAME.items():
        if key in columns:
            data[target] = pd.to_numeric(frame[columns[key]], errors="coerce").to_numpy(dtype="float64")
    if auto_adjust:
        data["adj_close"] = data["close"]
    elif "adj_close" not in data:
        logger.warning("%s: no 'Adj Close' column with auto_adjust=False; adj_close left null", ticker)
        data["adj_close"] = [None] * len(frame)
    return pl.DataFrame(data).select([pl.col(c).cast(t, strict=False) for c, t in PRICE_COLUMNS.items()])


def statements_to_facts(
    statements: Sequence[pd.DataFrame | None], ticker: str, lag_days: int = FUNDAMENTALS_LAG_DAYS
) -> pl.DataFrame:
    """Quarterly statements (rows = line items, columns = period ends) -> FUNDAMENTAL_FACT_COLUMNS.

    available_at = period_end + `lag_days`. Dividends are reported as positive amounts.
    """
    rows: list[dict[str, Any]] = []
    found: set[str] = set()
    for statement in statements:
        if statement is None or len(statement) == 0:
            continue
        labels = {_normalize_label(label): label for label in statement.index}
        for metric, aliases in _STATEMENT_METRICS.items():
            if metric in found:
                continue
            label = next((labels[a] for a in aliases if a in labels), None)
            if label is None:
                continue
            found.add(metric)
            for period, value in statement.loc[label].items():
                period_end = pd.Timestamp(period).date()
                number = pd.to_numeric(value, errors="coerce")
                if pd.isna(number):
                    continue
                rows.append({
                    "ticker": ticker,
                    "period_end": period_end,
                    "available_at": period_end + timedelta(days=lag_days),
                    "metric": metric,
                    "value": abs(float(number)) if metric == "dividends" else float(number),
                })
    if not rows:
        return empty_frame(FUNDAMENTAL_FACT_COLUMNS)
    return pl.DataFrame(rows).select([pl.col(c).cast(t) for c, t in FUNDAMENTAL_FACT_COLUMNS.items()])


_UNREACHABLE = re.compile(
    r"resolve|name or service not known|nodename nor servname|temporary failure in name resolution|"
    r"failed to establish a new connection|connection refused|network is unreachable|could not connect",
    re.IGNORECASE,
)
_HOST = re.compile(r"host='([^']+)'|resolve (?:host:? )?'?([A-Za-z0-9.-]+\.[a-z]{2,})")


def unreachable_host(error: BaseException) -> str | None:
    """When `error` (or an error it was raised from) says the host could not be reached (DNS
    failure, refused or failed connection), a short description naming the host; else None."""
    seen: BaseException | None = error
    while seen is not None:
        text = str(seen)
        if _UNREACHABLE.search(text):
            match = _HOST.search(text)
            host = next((g for g in match.groups() if g), None) if match else None
            return f"host {host}" if host else "host unreachable"
        seen = seen.__cause__ or seen.__context__
    return None


def _default_ticker_factory() -> Callable[[str], Any]:
    import yfinance

    config = getattr(yfinance, "config", None)
    if config is not None and hasattr(config, "debug"):
        config.debug.hide_exceptions = False
    return yfinance.Ticker


def _raise_errors_kwarg() -> dict[str, bool]:
    """yfinance >= 1.0 raises via `config.debug.hide_exceptions`; older versions need raise_errors."""
    import yfinance

    return {} if hasattr(yfinance, "config") else {"raise_errors": True}


class YFinanceProvider(MarketDataProvider):
    """Market data from Yahoo Finance through yfinance, cached, retried and circuit-broken.

    `ticker_factory` (default `yfinance.Ticker`), `sleep` and `today` are injectable so the
    provider can be tested offline and instantly.
    """

    def __init__(
        self,
        tickers: Sequence[str],
        benchmark_ticker: str = "SPY",
        cache_dir: str | Path = "warehouse/cache",
        auto_adjust: bool = False,
        max_retries: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        jitter: float = 0.25,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        ticker_factory: Callable[[str], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], date] = date.today,
        on_ticker_error: Literal["raise", "skip"] = "raise",
        fundamentals_lag_days: int = FUNDAMENTALS_LAG_DAYS,
    ):
        symbols = [t.strip().upper() for t in tickers if t and t.strip()]
        if not benchmark_ticker or not benchmark_ticker.strip():
            raise ValueError("YFinanceProvider needs a benchmark ticker")
        self._benchmark = benchmark_ticker.strip().upper()
        self.tickers = list(dict.fromkeys([*symbols, self._benchmark]))
        self.auto_adjust = bool(auto_adjust)
        self.cache_dir = Path(cache_dir) / "yfinance"
        self.cache = ParquetBarCache(self.cache_dir / ("bars_adjusted" if self.auto_adjust else "bars"))
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            name="yfinance",
            ignored_exceptions=NO_DATA_ERRORS,
        )
        self.metadata_breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            name="yfinance-metadata",
            ignored_exceptions=NO_DATA_ERRORS,
        )
        if ticker_factory is None:
            self._ticker_factory = _default_ticker_factory()
            self._history_extra = _raise_errors_kwarg()
        else:
            self._ticker_factory = ticker_factory
            self._history_extra = {}
        self._sleep = sleep
        self._today = today
        self.on_ticker_error = on_ticker_error
        self.fundamentals_lag_days = fundamentals_lag_days
        self._tickers: dict[str, Any] = {}
        self.tickers_without_metadata: list[str] = []

    @property
    def name(self) -> str:
        return f"yfinance({len(self.tickers)} tickers)"

    @property
    def benchmark_ticker(self) -> str:
        return self._benchmark

    def _ticker(self, symbol: str) -> Any:
        if symbol not in self._tickers:
            self._tickers[symbol] = self._ticker_factory(symbol)
        return self._tickers[symbol]

    def _resilient(
        self, what: str, fn: Callable[[], Any], max_retries: int | None = None, metadata: bool = False
    ) -> Any:
        """fn() with retries on transient errors, each attempt through a circuit breaker (prices
        and metadata have separate breakers, so failing `info` calls never block prices); no
        retry once the breaker has opened."""
        breaker = self.metadata_breaker if metadata else self.breaker
        retries = self.max_retries if max_retries is None else max_retries

        def attempt() -> Any:
            try:
                return breaker.call(fn)
            except TRANSIENT_ERRORS as error:
                if breaker.state is CircuitState.OPEN:
                    raise CircuitOpenError(breaker.name, breaker.recovery_timeout) from error
                raise

        try:
            return retry_with_backoff(
                attempt,
                max_retries=retries,
                base_delay=self.base_delay,
                max_delay=self.max_delay,
                jitter=self.jitter,
                retry_on=TRANSIENT_ERRORS,
                sleep=self._sleep,
            )
        except NO_DATA_ERRORS as error:
            raise NoDataError(f"{what}: no data ({error})") from error
        except CircuitOpenError as error:
            raise ProviderError(f"{what}: yfinance unavailable ({error})") from error
        except TRANSIENT_ERRORS as error:
            raise ProviderError(
                f"{what}: failed after {retries} retries ({type(error).__name__}: {error})"
            ) from error
        except ProviderError:
            raise
        except Exception as error:
            raise ProviderError(f"{what}: {type(error).__name__}: {error}") from error

    def download(self, ticker: str, start: date, end: date) -> pl.DataFrame:
        """Bars of `ticker` for start <= date <= end straight from Yahoo (no cache)."""

        def history() -> pd.DataFrame:
            frame = self._ticker(ticker).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval="1d",
                auto_adjust=self.auto_adjust,
                actions=False,
                **self._history_extra,
            )
            if frame is None or len(frame) == 0:
                raise NoDataError(f"yfinance returned an empty frame for {ticker} {start}..{end}")
            return frame

        raw = self._resilient(f"prices of {ticker} {start}..{end}", history)
        frame = history_to_frame(raw, ticker, self.auto_adjust)
        return frame.filter(pl.col("date").is_between(start, end))

    def prices(self, start: date, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        check_date_range(start, end)
        today = self._today()
        end = min(end, today)
        if start > end:
            return empty_frame(PRICE_COLUMNS)
        symbols = self.tickers if tickers is None else [t.strip().upper() for t in tickers]
        frames: list[pl.DataFrame] = []
        failures: dict[str, str] = {}
        causes: list[BaseException] = []
        for position, symbol in enumerate(symbols):
            try:
                frames.append(
                    self.cache.get_or_fetch(
                        symbol,
                        start,
                        end,
                        lambda a, b, s=symbol: self.download(s, a, b),
                        complete_until=today - timedelta(days=1),
                    )
                )
            except ProviderError as error:
                failures[symbol] = str(error)
                causes.append(error)
                if self.breaker.state is CircuitState.OPEN:
                    for skipped in symbols[position + 1:]:
                        failures[skipped] = "not attempted: the circuit is open"
                    break
        if failures:
            message = "; ".join(f"{t}: {e}" for t, e in failures.items())
            unreachable = next((u for u in map(unreachable_host, causes) if u), None)
            if unreachable:
                message = f"could not reach Yahoo Finance ({unreachable}): no connection or DNS. {message}"
            if self.on_ticker_error == "raise" or not frames:
                raise ProviderError(f"yfinance prices failed for {len(failures)} of {len(symbols)} tickers "
                                    f"{sorted(failures)}: {message}")
            logger.warning("yfinance prices skipped %s: %s", sorted(failures), message)
        if not frames:
            return empty_frame(PRICE_COLUMNS)
        return pl.concat(frames).select(list(PRICE_COLUMNS)).sort("date", "ticker")

    def _info(self, symbol: str) -> dict[str, Any]:
        """Ticker.info, cached on disk; {} when Yahoo does not answer (never raises)."""
        path = self.cache_dir / "info" / f"{safe_file_stem(symbol)}.json"
        if path.exists():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError) as error:
                logger.warning("unreadable info cache %s (%s); re-fetching", path, error)
        try:
            info = self._resilient(
                f"info of {symbol}", lambda: dict(self._ticker(symbol).info or {}), max_retries=1, metadata=True
            )
        except ProviderError as error:
            logger.warning("%s: no info from yfinance (%s); sector 'Unknown'", symbol, error)
            return {}
        keep = {k: info.get(k) for k in ("longName", "shortName", "sector", "quoteType",
                                          "firstTradeDateMilliseconds", "firstTradeDateEpochUtc") if info.get(k) is not None}
        if keep:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(keep))
            tmp.replace(path)
        return keep

    @staticmethod
    def _first_trade_date(info: dict[str, Any]) -> date | None:
        millis = info.get("firstTradeDateMilliseconds")
        seconds = info.get("firstTradeDateEpochUtc")
        try:
            if millis is not None:
                return datetime.fromtimestamp(float(millis) / 1000.0, tz=timezone.utc).date()
            if seconds is not None:
                return datetime.fromtimestamp(float(seconds), tz=timezone.utc).date()
        except (TypeError, ValueError, OverflowError):
            return None
        return None

    def universe(self) -> pl.DataFrame:
        """One row per ticker from `Ticker.info`; tickers Yahoo gave no metadata for (offline, or
        an empty answer) get sector "Unknown" and name = ticker, are listed in
        `tickers_without_metadata` and warned about with a count."""
        rows = []
        self.tickers_without_metadata = []
        for symbol in self.tickers:
            info = self._info(symbol)
            if not info:
                self.tickers_without_metadata.append(symbol)
            rows.append({
                "ticker": symbol,
                "name": info.get("longName") or info.get("shortName") or symbol,
                "sector": info.get("sector") or "Unknown",
                "asset_class": infer_asset_class(symbol, info.get("quoteType")),
                "listed_date": self._first_trade_date(info),
                "delisted_date": None,
                "is_benchmark": symbol == self._benchmark,
            })
        if self.tickers_without_metadata:
            logger.warning(
                "yfinance: no metadata for %d of %d tickers %s (sector 'Unknown', name = ticker); "
                "Yahoo unreachable or no info for them",
                len(self.tickers_without_metadata), len(self.tickers), self.tickers_without_metadata,
            )
        return pl.DataFrame(rows, schema=UNIVERSE_COLUMNS)

    def _statement_facts(self, symbol: str) -> pl.DataFrame:
        """Facts from the quarterly statements, cached for the day; empty on any failure."""
        today = self._today()
        path = self.cache_dir / "fundamentals" / f"{safe_file_stem(symbol)}.parquet"
        if path.exists():
            try:
                meta = pl.read_parquet_metadata(path)
                if meta.get("fetched_on") == today.isoformat():
                    return pl.read_parquet(path).cast(FUNDAMENTAL_FACT_COLUMNS)  # type: ignore[arg-type]
            except Exception as error:  # noqa: BLE001 - stale or corrupt cache: fetch again
                logger.warning("unreadable fundamentals cache %s (%s); re-fetching", path, error)
        statements = []
        for attribute in _STATEMENTS:
            try:
                statements.append(
                    self._resilient(
                        f"{attribute} of {symbol}",
                        lambda a=attribute: getattr(self._ticker(symbol), a),
                        max_retries=1,
                        metadata=True,
                    )
                )
            except ProviderError as error:
                logger.warning("%s: no %s from yfinance (%s)", symbol, attribute, error)
        facts = statements_to_facts(statements, symbol, self.fundamentals_lag_days)
        atomic_write_parquet(facts, path, {"fetched_on": today.isoformat()})
        return facts

    def fundamentals(self, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        """Best-effort facts from quarterly statements with available_at <= end (crypto, FX skipped)."""
        cutoff = min(end, self._today())
        symbols = self.tickers if tickers is None else [t.strip().upper() for t in tickers]
        frames = [
            self._statement_facts(symbol)
            for symbol in symbols
            if infer_asset_class(symbol) == "equity" and symbol != self._benchmark
        ]
        if not frames:
            return empty_frame(FUNDAMENTAL_FACT_COLUMNS)
        return (
            pl.concat(frames)
            .filter(pl.col("available_at") <= cutoff)
            .sort("ticker", "available_at", "metric")
        )

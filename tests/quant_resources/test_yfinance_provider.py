"""yfinance provider, offline: a fake `ticker_factory` serves recorded-layout frames from
tests/fixtures/yfinance/. Covers retries, errors, time zones, the partial-fetch cache and the
circuit breaker. No test touches the network."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

from quant_lib.data.cleaning import clean_ohlcv
from quant_lib.data.schemas import FUNDAMENTAL_FACT_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS, UniverseSchema
from quant_resources.circuit_breaker import CircuitState
from quant_resources.providers import NoDataError, ProviderError
from quant_resources.providers.cache import CachedBars, ParquetBarCache
from quant_resources.providers.yfinance_provider import (
    YFinanceProvider,
    history_to_frame,
    infer_asset_class,
    statements_to_facts,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yfinance"
EXCHANGE_TZ = {"AAPL": "America/New_York", "SPY": "America/New_York", "BTC-USD": "UTC",
               "EURUSD=X": "Europe/London", "7203.T": "Asia/Tokyo"}
TODAY = date(2024, 7, 15)


def load_history(symbol: str) -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / f"{symbol}_history.csv", index_col="Date")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True).tz_convert(EXCHANGE_TZ[symbol]), name="Date")
    return frame


def load_statement(name: str) -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / f"AAPL_{name}.csv", index_col=0)
    frame.columns = pd.to_datetime(frame.columns)
    return frame


class FakeTicker:
    """Answers like `yfinance.Ticker` with `hide_exceptions=False`, from the fixtures."""

    def __init__(self, symbol: str, yahoo: FakeYahoo):
        self.symbol = symbol
        self.yahoo = yahoo

    def _next_scripted(self, kind: str):
        script = self.yahoo.scripts.get((self.symbol, kind), [])
        if script:
            outcome = script.pop(0) if len(script) > 1 or not self.yahoo.repeat_last else script[0]
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, type) and issubclass(outcome, BaseException):
                raise outcome()

    def history(self, start: str, end: str, interval: str, auto_adjust: bool, actions: bool, **extra):
        self.yahoo.calls.append({"symbol": self.symbol, "start": start, "end": end, "interval": interval,
                                 "auto_adjust": auto_adjust, "actions": actions, **extra})
        self._next_scripted("history")
        path = FIXTURES / f"{self.symbol}_history.csv"
        if not path.exists():
            raise YFPricesMissingError(f"${self.symbol}", "")
        frame = load_history(self.symbol)
        local_day = frame.index.tz_localize(None).normalize()
        window = frame[(local_day >= pd.Timestamp(start)) & (local_day < pd.Timestamp(end))]
        if auto_adjust:
            window = window.drop(columns=["Adj Close"])
        return window.copy()

    @property
    def info(self) -> dict:
        self.yahoo.info_calls.append(self.symbol)
        self._next_scripted("info")
        path = FIXTURES / f"{self.symbol}_info.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _statement(self, name: str) -> pd.DataFrame:
        self._next_scripted(name)
        return load_statement(name) if self.symbol == "AAPL" else pd.DataFrame()

    quarterly_income_stmt = property(lambda self: self._statement("quarterly_income_stmt"))
    quarterly_balance_sheet = property(lambda self: self._statement("quarterly_balance_sheet"))
    quarterly_cashflow = property(lambda self: self._statement("quarterly_cashflow"))


class FakeYahoo:
    """The `ticker_factory`: records every history call; `scripts[(symbol, kind)]` lists
    exceptions to raise first (with `repeat_last`, the last one forever)."""

    def __init__(self, scripts: dict | None = None, repeat_last: bool = False):
        self.scripts = scripts or {}
        self.repeat_last = repeat_last
        self.calls: list[dict] = []
        self.info_calls: list[str] = []

    def __call__(self, symbol: str) -> FakeTicker:
        return FakeTicker(symbol, self)


def make_provider(tmp_path: Path, yahoo: FakeYahoo, tickers=("AAPL",), sleeps: list | None = None, **kwargs):
    sleeps = [] if sleeps is None else sleeps
    defaults = dict(benchmark_ticker="SPY", cache_dir=tmp_path / "cache", ticker_factory=yahoo,
                    sleep=sleeps.append, today=lambda: TODAY, base_delay=1.0, jitter=0.0, max_retries=4)
    defaults.update(kwargs)
    return YFinanceProvider(list(tickers), **defaults)


def test_prices_in_canonical_layout_with_explicit_history_arguments(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert prices.schema == pl.Schema(PRICE_COLUMNS)
    assert set(prices["ticker"]) == {"AAPL", "SPY"}  # the benchmark comes along
    aapl = prices.filter(pl.col("ticker") == "AAPL")
    recorded = load_history("AAPL").iloc[:21]
    assert aapl["date"].to_list()[:3] == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert aapl["adj_close"].to_list() == pytest.approx(recorded["Adj Close"].tolist())
    assert aapl["volume"].dtype == pl.Float64
    call = yahoo.calls[0]
    assert (call["start"], call["end"]) == ("2024-01-01", "2024-02-01")  # Yahoo's end is exclusive
    assert (call["interval"], call["auto_adjust"], call["actions"]) == ("1d", False, False)
    cleaned, report = clean_ohlcv(prices)
    assert report.rows_out == prices.height


def test_auto_adjust_sets_adj_close_to_close(tmp_path):
    provider = make_provider(tmp_path, FakeYahoo(), auto_adjust=True)
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 10), ["AAPL"])
    assert prices["adj_close"].to_list() == prices["close"].to_list()


def test_rate_limit_then_success_backs_off_exponentially(tmp_path):
    yahoo = FakeYahoo({("AAPL", "history"): [YFRateLimitError(), YFRateLimitError(), ConnectionError("reset")]})
    sleeps: list[float] = []
    provider = make_provider(tmp_path, yahoo, sleeps=sleeps, base_delay=0.5)
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["AAPL"])
    assert prices.height == 21
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(yahoo.calls) == 4
    assert provider.breaker.state is CircuitState.CLOSED


def test_retries_exhausted_is_a_provider_error(tmp_path):
    yahoo = FakeYahoo({("AAPL", "history"): [TimeoutError("slow")]}, repeat_last=True)
    sleeps: list[float] = []
    provider = make_provider(tmp_path, yahoo, sleeps=sleeps, max_retries=2, failure_threshold=50)
    with pytest.raises(ProviderError, match=r"AAPL.*failed after 2 retries.*TimeoutError"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["AAPL"])
    assert sleeps == [1.0, 2.0]


def test_empty_answer_is_an_error_not_an_empty_frame(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    with pytest.raises(NoDataError, match="empty frame for AAPL"):
        provider.download("AAPL", date(2023, 6, 1), date(2023, 6, 30))
    with pytest.raises(ProviderError, match=r"\['AAPL'\]"):
        provider.prices(date(2023, 6, 1), date(2023, 6, 30), ["AAPL"])
    with pytest.raises(ProviderError, match="NOPE.*no data"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["NOPE"])
    # "no data" is an answer, not an outage: no retry, and the breaker stays closed
    assert len([c for c in yahoo.calls if c["symbol"] == "NOPE"]) == 1
    assert provider.breaker.state is CircuitState.CLOSED and provider.breaker.failure_count == 0


@pytest.mark.parametrize(
    ("symbol", "first_day", "n_january"),
    [("AAPL", date(2024, 1, 2), 21), ("BTC-USD", date(2024, 1, 1), 31),
     ("EURUSD=X", date(2024, 1, 1), 23), ("7203.T", date(2024, 1, 4), 12)],
)
def test_tz_aware_index_becomes_the_exchange_date(tmp_path, symbol, first_day, n_january):
    provider = make_provider(tmp_path, FakeYahoo(), tickers=[symbol])
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31), [symbol])
    assert prices["date"].to_list()[0] == first_day
    assert prices.height == n_january
    assert prices["date"].is_unique().all()
    # 7203.T bars are stamped 00:00+09:00, i.e. 15:00 UTC the day before: converting to UTC
    # first would shift every date back by one day.
    raw_first = load_history(symbol).index[0]
    assert raw_first.tz is not None and raw_first.date() == first_day


def test_history_to_frame_accepts_naive_index_and_rejects_missing_columns():
    naive = load_history("AAPL").iloc[:3]
    naive.index = naive.index.tz_localize(None)
    assert history_to_frame(naive, "AAPL", False)["date"].to_list()[0] == date(2024, 1, 2)
    with pytest.raises(ProviderError, match=r"lacks columns \['close'\]"):
        history_to_frame(naive.drop(columns=["Close"]), "AAPL", False)


def test_partial_range_fetches_only_the_missing_months(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    first = provider.prices(date(2024, 1, 1), date(2024, 3, 31), ["AAPL"])
    assert [(c["start"], c["end"]) for c in yahoo.calls] == [("2024-01-01", "2024-04-01")]

    full = provider.prices(date(2024, 1, 1), date(2024, 6, 30), ["AAPL"])
    assert [(c["start"], c["end"]) for c in yahoo.calls[1:]] == [("2024-04-01", "2024-07-01")]
    assert full.filter(pl.col("date") <= date(2024, 3, 31)).equals(first)
    direct = history_to_frame(load_history("AAPL"), "AAPL", False)
    assert full.equals(direct)

    again = make_provider(tmp_path, yahoo).prices(date(2024, 2, 1), date(2024, 6, 30), ["AAPL"])
    assert len(yahoo.calls) == 2  # a re-run (new process, same cache) downloads nothing
    assert again.equals(full.filter(pl.col("date") >= date(2024, 2, 1)))


def test_partial_range_before_the_cached_start(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    provider.prices(date(2024, 3, 1), date(2024, 6, 30), ["AAPL"])
    provider.prices(date(2024, 1, 1), date(2024, 6, 30), ["AAPL"])
    assert [(c["start"], c["end"]) for c in yahoo.calls] == [("2024-03-01", "2024-07-01"), ("2024-01-01", "2024-03-01")]


def test_days_without_bars_next_to_the_cache_are_not_refetched(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    provider.prices(date(2024, 1, 1), date(2024, 6, 28), ["AAPL"])
    provider.prices(date(2024, 1, 1), date(2024, 7, 5), ["AAPL"])  # no bars after Jun 28 in the fixture
    provider.prices(date(2024, 1, 1), date(2024, 7, 5), ["AAPL"])
    assert [(c["start"], c["end"]) for c in yahoo.calls] == [("2024-01-01", "2024-06-29"), ("2024-06-29", "2024-07-06")]


def test_today_is_never_cached_as_complete_and_future_is_never_asked(tmp_path):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo, today=lambda: date(2024, 6, 28))
    provider.prices(date(2024, 6, 1), date(2024, 12, 31), ["AAPL"])
    assert yahoo.calls[0]["end"] == "2024-06-29"
    provider.prices(date(2024, 6, 1), date(2024, 6, 28), ["AAPL"])
    assert [(c["start"], c["end"]) for c in yahoo.calls[1:]] == [("2024-06-28", "2024-06-29")]
    assert provider.prices(date(2024, 7, 1), date(2024, 7, 31), ["AAPL"]).is_empty()


def test_corrupt_cache_file_is_deleted_logged_and_refetched(tmp_path, caplog):
    yahoo = FakeYahoo()
    provider = make_provider(tmp_path, yahoo)
    expected = provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["AAPL"])
    path = provider.cache.path("AAPL")
    path.write_bytes(b"PAR1 garbage")
    with caplog.at_level(logging.WARNING):
        again = provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["AAPL"])
    assert again.equals(expected)
    assert len(yahoo.calls) == 2
    assert "corrupt cache file" in caplog.text
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temp files


def test_circuit_opens_after_n_failures_and_fails_fast(tmp_path):
    yahoo = FakeYahoo({("AAPL", "history"): [ConnectionError("refused")],
                       ("SPY", "history"): [ConnectionError("refused")]}, repeat_last=True)
    sleeps: list[float] = []
    provider = make_provider(tmp_path, yahoo, sleeps=sleeps, failure_threshold=3, max_retries=10)
    with pytest.raises(ProviderError, match="unavailable.*circuit 'yfinance' is OPEN"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert len(yahoo.calls) == 3 and len(sleeps) == 2
    assert provider.breaker.state is CircuitState.OPEN
    with pytest.raises(ProviderError, match="OPEN"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["SPY"])
    assert len(yahoo.calls) == 3  # blocked without calling Yahoo


def test_skip_policy_returns_the_tickers_that_worked(tmp_path):
    provider = make_provider(tmp_path, FakeYahoo(), tickers=["AAPL", "NOPE"], on_ticker_error="skip")
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert set(prices["ticker"]) == {"AAPL", "SPY"}


def test_universe_from_info_with_fallbacks_and_disk_cache(tmp_path):
    yahoo = FakeYahoo({("EURUSD=X", "info"): [ConnectionError("down")]}, repeat_last=True)
    provider = make_provider(tmp_path, yahoo, tickers=["AAPL", "BTC-USD", "EURUSD=X", "7203.T"])
    universe = provider.universe()
    UniverseSchema.validate(universe)
    assert universe.schema == pl.Schema(UNIVERSE_COLUMNS)
    rows = {r["ticker"]: r for r in universe.to_dicts()}
    assert (rows["AAPL"]["name"], rows["AAPL"]["sector"], rows["AAPL"]["asset_class"]) == ("Apple Inc.", "Technology", "equity")
    assert rows["AAPL"]["listed_date"] == date(1980, 12, 12)
    assert (rows["BTC-USD"]["asset_class"], rows["BTC-USD"]["sector"]) == ("crypto", "Unknown")
    assert (rows["EURUSD=X"]["asset_class"], rows["EURUSD=X"]["sector"]) == ("fx", "Unknown")
    assert rows["SPY"]["is_benchmark"] and rows["SPY"]["asset_class"] == "etf"
    assert not rows["AAPL"]["is_benchmark"]

    # info failures trip only the metadata breaker: prices still flow
    assert provider.breaker.state is CircuitState.CLOSED
    failing = FakeYahoo({(s, "info"): [ConnectionError("down")] for s in ["AAPL", "BTC-USD", "SPY"]}, repeat_last=True)
    flaky = make_provider(tmp_path / "other", failing, tickers=["AAPL", "BTC-USD"], failure_threshold=2)
    assert flaky.universe()["sector"].to_list() == ["Unknown"] * 3
    assert flaky.metadata_breaker.state is CircuitState.OPEN
    assert flaky.prices(date(2024, 1, 2), date(2024, 1, 5), ["AAPL"]).height == 4

    offline = FakeYahoo({(s, "info"): [ConnectionError("down")] for s in ["AAPL", "SPY"]}, repeat_last=True)
    cached = make_provider(tmp_path, offline, tickers=["AAPL"]).universe()
    assert cached.filter(pl.col("ticker") == "AAPL")["sector"].item() == "Technology"
    assert offline.info_calls == []


def test_infer_asset_class():
    assert infer_asset_class("BTC-USD") == "crypto"
    assert infer_asset_class("EURUSD=X") == "fx"
    assert infer_asset_class("AAPL") == "equity"
    assert infer_asset_class("SPY", "ETF") == "etf"
    assert infer_asset_class("ETH-EUR") == "crypto"


def test_fundamentals_from_quarterly_statements(tmp_path):
    provider = make_provider(tmp_path, FakeYahoo(), tickers=["AAPL", "BTC-USD"])
    facts = provider.fundamentals(date(2024, 12, 31))
    assert facts.schema == pl.Schema(FUNDAMENTAL_FACT_COLUMNS)
    assert set(facts["ticker"]) == {"AAPL"}
    assert (facts["available_at"] - facts["period_end"]).unique().to_list() == [timedelta(days=45)]
    q1 = {r["metric"]: r["value"] for r in facts.filter(pl.col("period_end") == date(2024, 3, 31)).to_dicts()}
    assert q1["revenue"] == 90753e6 and q1["eps_actual"] == 1.53 and q1["book_equity"] == 74194e6
    assert q1["dividends"] == 3710e6  # reported as a positive amount
    assert facts["available_at"].max() == date(2024, 5, 15)  # Q1 2024 + 45 days; TODAY = 2024-07-15
    assert provider.fundamentals(date(2024, 5, 14))["period_end"].max() == date(2023, 12, 31)


def test_fundamentals_best_effort_when_statements_fail(tmp_path):
    yahoo = FakeYahoo({("AAPL", "quarterly_balance_sheet"): [ConnectionError("x")]}, repeat_last=True)
    facts = make_provider(tmp_path, yahoo).fundamentals(date(2024, 12, 31))
    assert "revenue" in set(facts["metric"]) and "total_assets" not in set(facts["metric"])
    assert statements_to_facts([None, pd.DataFrame()], "AAPL").is_empty()


def test_cache_missing_ranges_keep_coverage_contiguous():
    d = date
    cached = CachedBars(frame=pl.DataFrame(schema=PRICE_COLUMNS), covered_start=d(2024, 3, 1), covered_end=d(2024, 3, 31))
    missing = ParquetBarCache.missing_ranges
    assert missing(None, d(2024, 1, 1), d(2024, 1, 5)) == [(d(2024, 1, 1), d(2024, 1, 5))]
    assert missing(cached, d(2024, 3, 5), d(2024, 3, 20)) == []
    assert missing(cached, d(2024, 2, 1), d(2024, 4, 10)) == [(d(2024, 2, 1), d(2024, 2, 29)), (d(2024, 4, 1), d(2024, 4, 10))]
    assert missing(cached, d(2024, 1, 1), d(2024, 1, 31)) == [(d(2024, 1, 1), d(2024, 2, 29))]  # fills the gap too
    assert missing(cached, d(2024, 5, 1), d(2024, 5, 2)) == [(d(2024, 4, 1), d(2024, 5, 2))]


def test_cache_round_trip_and_fetched_rows_win(tmp_path):
    cache = ParquetBarCache(tmp_path)
    bars = history_to_frame(load_history("SPY"), "SPY", False)
    jan = bars.filter(pl.col("date") <= date(2024, 1, 31))
    assert cache.get_or_fetch("SPY", date(2024, 1, 1), date(2024, 1, 31), lambda a, b: jan).equals(jan)
    stored = cache.read("SPY")
    assert (stored.covered_start, stored.covered_end) == (date(2024, 1, 1), date(2024, 1, 31))
    revised = bars.filter(pl.col("date").is_between(date(2024, 1, 31), date(2024, 2, 29))).with_columns(pl.col("close") + 1)
    merged = cache.get_or_fetch("SPY", date(2024, 1, 1), date(2024, 2, 29), lambda a, b: revised)
    assert merged["date"].is_unique().all() and merged.height == bars.filter(pl.col("date") <= date(2024, 2, 29)).height
    # the fetch window is (Feb 1, Feb 29): the revised Jan 31 row lies outside it and is ignored
    assert merged.filter(pl.col("date") == date(2024, 1, 31))["close"].item() == jan["close"][-1]
    assert [(f.start, f.end) for f in cache.fetch_log] == [(date(2024, 1, 1), date(2024, 1, 31)), (date(2024, 2, 1), date(2024, 2, 29))]


def test_default_factory_makes_yfinance_raise(tmp_path):
    import yfinance

    provider = YFinanceProvider(["AAPL"], cache_dir=tmp_path)
    assert provider._ticker_factory is yfinance.Ticker
    assert yfinance.config.debug.hide_exceptions is False


def test_offline_error_says_the_host_is_unreachable_and_lists_every_ticker(tmp_path):
    """Issue 15 item 9: DNS failure for every request; the breaker opens after 3 failures, yet
    the error names all four tickers and says Yahoo could not be reached."""
    import requests

    dns = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='query2.finance.yahoo.com', port=443): Max retries exceeded "
        "(Caused by NameResolutionError(\"Failed to resolve 'query2.finance.yahoo.com'\"))"
    )
    symbols = ["AAPL", "MSFT", "NVDA"]
    yahoo = FakeYahoo({(s, "history"): [dns] for s in [*symbols, "SPY"]}, repeat_last=True)
    provider = make_provider(tmp_path, yahoo, tickers=symbols, failure_threshold=3, max_retries=1)
    with pytest.raises(ProviderError) as error:
        provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    message = str(error.value)
    assert "could not reach Yahoo Finance" in message and "query2.finance.yahoo.com" in message
    assert "['AAPL', 'MSFT', 'NVDA', 'SPY']" in message
    assert len(yahoo.calls) <= 3  # fails fast once the circuit is open


def test_universe_without_metadata_warns_with_a_count(tmp_path, caplog):
    import requests

    down = requests.exceptions.ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")
    yahoo = FakeYahoo({(s, "info"): [down] for s in ["AAPL", "MSFT", "SPY"]}, repeat_last=True)
    provider = make_provider(tmp_path, yahoo, tickers=["AAPL", "MSFT"])
    with caplog.at_level(logging.WARNING):
        universe = provider.universe()
    assert universe.height == 3
    assert "no metadata for 3 of 3 tickers" in caplog.text and "AAPL" in caplog.text
    assert provider.tickers_without_metadata == ["AAPL", "MSFT", "SPY"]

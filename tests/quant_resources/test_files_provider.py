"""Files provider: CSV / Parquet round trip, optional files, malformed-file errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from quant_lib.data.schemas import (
    FUNDAMENTAL_FACT_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    FundamentalFactsSchema,
    UniverseSchema,
)
from quant_resources.providers import MarketDataProvider, ProviderError
from quant_resources.providers.files import FilesProvider

def trading_days(start: date, end: date) -> list[date]:
    days = pl.date_range(start, end, eager=True)
    return days.filter(days.dt.weekday() <= 5).to_list()


def price_panel() -> pl.DataFrame:
    """SPY and AAA trade every weekday of Jan 2024; OLD stops on Jan 10; NEW starts Jan 8."""
    spans = {"SPY": (date(2024, 1, 1), date(2024, 1, 31)), "AAA": (date(2024, 1, 1), date(2024, 1, 31)),
             "OLD": (date(2024, 1, 1), date(2024, 1, 10)), "NEW": (date(2024, 1, 8), date(2024, 1, 31))}
    frames = []
    for k, (ticker, (start, end)) in enumerate(spans.items()):
        days = trading_days(start, end)
        close = [100.0 + 10 * k + 0.5 * i for i in range(len(days))]
        frames.append(pl.DataFrame({
            "date": days, "ticker": ticker, "open": [c - 0.25 for c in close], "high": [c + 1 for c in close],
            "low": [c - 1 for c in close], "close": close, "adj_close": [c * 0.99 for c in close],
            "volume": [1e6 + i for i in range(len(days))],
        }))
    return pl.concat(frames).select(list(PRICE_COLUMNS)).sort("date", "ticker")


UNIVERSE_FILE = pl.DataFrame({
    "ticker": ["SPY", "AAA", "OLD", "NEW"], "name": ["S&P 500 ETF", "Aaa Corp", "Old Corp", None],
    "sector": ["Benchmark", "Technology", "Energy", None], "asset_class": ["etf", "equity", "equity", None],
})

FACTS = pl.DataFrame({
    "ticker": ["AAA", "AAA", "NEW"], "period_end": [date(2023, 9, 30), date(2023, 12, 31), date(2023, 12, 31)],
    "available_at": [date(2023, 11, 10), date(2024, 2, 10), date(2024, 1, 20)],
    "metric": ["revenue", "revenue", "eps_actual"], "value": [10.0, 12.0, 0.7],
}).cast(FUNDAMENTAL_FACT_COLUMNS)


def write_dataset(folder: Path, fmt: str, panel: pl.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for (ticker,), frame in panel.partition_by("ticker", as_dict=True).items():
        body = frame.drop("ticker")
        if fmt == "csv":
            body.write_csv(folder / f"{ticker}.csv")
        else:
            body.write_parquet(folder / f"{ticker}.parquet")
    UNIVERSE_FILE.write_csv(folder / "universe.csv")
    if fmt == "csv":
        FACTS.write_csv(folder / "fundamentals.csv")
    else:
        FACTS.write_parquet(folder / "fundamentals.parquet")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip(tmp_path, fmt):
    panel = price_panel()
    write_dataset(tmp_path, fmt, panel)
    provider = FilesProvider(tmp_path, benchmark_ticker="SPY")
    assert isinstance(provider, MarketDataProvider)

    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert prices.equals(panel)
    window = provider.prices(date(2024, 1, 9), date(2024, 1, 11), tickers=["aaa", "OLD"])
    assert window.equals(panel.filter(pl.col("date").is_between(date(2024, 1, 9), date(2024, 1, 11))
                                      & pl.col("ticker").is_in(["AAA", "OLD"])))

    universe = provider.universe()
    UniverseSchema.validate(universe)
    assert universe.schema == pl.Schema(UNIVERSE_COLUMNS)
    rows = {r["ticker"]: r for r in universe.to_dicts()}
    assert rows["SPY"]["is_benchmark"] and not rows["AAA"]["is_benchmark"]
    assert rows["AAA"]["sector"] == "Technology" and rows["SPY"]["asset_class"] == "etf"
    assert (rows["NEW"]["name"], rows["NEW"]["sector"], rows["NEW"]["asset_class"]) == ("NEW", "Unknown", "equity")
    assert (rows["OLD"]["listed_date"], rows["OLD"]["delisted_date"]) == (date(2024, 1, 1), date(2024, 1, 11))
    assert (rows["NEW"]["listed_date"], rows["NEW"]["delisted_date"]) == (date(2024, 1, 8), None)

    facts = provider.fundamentals(date(2024, 2, 9))
    FundamentalFactsSchema.validate(facts)
    assert facts.schema == pl.Schema(FUNDAMENTAL_FACT_COLUMNS)
    assert sorted(facts["available_at"].to_list()) == [date(2023, 11, 10), date(2024, 1, 20)]
    assert provider.fundamentals(date(2024, 3, 1), tickers=["AAA"])["value"].to_list() == [10.0, 12.0]


def test_missing_optional_files_degrade_gracefully(tmp_path):
    panel = price_panel().filter(pl.col("ticker").is_in(["SPY", "AAA"]))
    for (ticker,), frame in panel.partition_by("ticker", as_dict=True).items():
        frame.drop("ticker", "adj_close").write_csv(tmp_path / f"{ticker}.csv")
    provider = FilesProvider(tmp_path, benchmark_ticker="SPY")
    universe = provider.universe()
    assert universe["sector"].to_list() == ["Unknown", "Unknown"]
    assert universe["asset_class"].to_list() == ["equity", "equity"]
    assert universe.filter(pl.col("is_benchmark"))["ticker"].to_list() == ["SPY"]
    assert provider.fundamentals(date(2030, 1, 1)).is_empty()
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert prices.height == panel.height
    assert prices["adj_close"].null_count() == prices.height  # raw: cleaning fills it from close


def test_yahoo_style_headers_and_timestamps(tmp_path):
    (tmp_path / "SPY.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02 00:00:00-05:00,470,472,468,471,469,1000\n"
        "2024-01-03 00:00:00-05:00,471,473,469,472,470,\n"
    )
    prices = FilesProvider(tmp_path).prices(date(2024, 1, 1), date(2024, 1, 5))
    assert prices["date"].to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert prices["adj_close"].to_list() == [469.0, 470.0]
    assert prices["volume"].to_list() == [1000.0, None]


def test_missing_benchmark_is_a_clear_error(tmp_path):
    price_panel().filter(pl.col("ticker") == "AAA").drop("ticker").write_csv(tmp_path / "AAA.csv")
    with pytest.raises(ProviderError, match=r"benchmark 'SPY' has no price file.*SPY\.csv"):
        FilesProvider(tmp_path, benchmark_ticker="SPY")
    with pytest.raises(ProviderError, match="does not exist"):
        FilesProvider(tmp_path / "nowhere")


def test_malformed_value_names_file_and_column(tmp_path):
    write_dataset(tmp_path, "csv", price_panel())
    (tmp_path / "BAD.csv").write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,twelve,10\n")
    provider = FilesProvider(tmp_path)
    with pytest.raises(ProviderError, match=r"BAD\.csv: column 'close' has 1 unparseable.*'twelve'.*rows \[2\]"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31))
    assert provider.prices(date(2024, 1, 1), date(2024, 1, 31), tickers=["AAA"]).height == 23


def test_missing_price_column_and_bad_dates_name_the_file(tmp_path):
    write_dataset(tmp_path, "csv", price_panel())
    (tmp_path / "NOCLOSE.csv").write_text("date,open,high,low,volume\n2024-01-02,1,2,0.5,10\n")
    (tmp_path / "BADDATE.csv").write_text("date,open,high,low,close,volume\n02/01/2024,1,2,0.5,1.5,10\n")
    (tmp_path / "NODATE.csv").write_text("date,open,high,low,close,volume\n,1,2,0.5,1.5,10\n")
    provider = FilesProvider(tmp_path)
    with pytest.raises(ProviderError, match=r"NOCLOSE\.csv: missing required columns \['close'\]"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["NOCLOSE"])
    with pytest.raises(ProviderError, match=r"BADDATE\.csv: column 'date'.*'02/01/2024'"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["BADDATE"])
    with pytest.raises(ProviderError, match=r"NODATE\.csv: column 'date' has 1 missing"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["NODATE"])
    with pytest.raises(ProviderError, match=r"no price file for \['ZZZ'\]"):
        provider.prices(date(2024, 1, 1), date(2024, 1, 31), ["ZZZ"])


def test_malformed_fundamentals_and_universe(tmp_path):
    write_dataset(tmp_path, "csv", price_panel())
    FACTS.drop("metric").write_csv(tmp_path / "fundamentals.csv")
    with pytest.raises(ProviderError, match=r"fundamentals\.csv: missing required columns \['metric'\]"):
        FilesProvider(tmp_path).fundamentals(date(2024, 12, 31))
    FACTS.with_columns(pl.col("value").cast(pl.String).replace("12.0", "twelve")).write_csv(tmp_path / "fundamentals.csv")
    with pytest.raises(ProviderError, match=r"column 'value'.*'twelve'"):
        FilesProvider(tmp_path).fundamentals(date(2024, 12, 31))
    FACTS.with_columns(pl.col("available_at").dt.offset_by("-1y")).write_csv(tmp_path / "fundamentals.csv")
    with pytest.raises(ProviderError, match="available before their period ends"):
        FilesProvider(tmp_path).fundamentals(date(2024, 12, 31))
    pl.concat([UNIVERSE_FILE, UNIVERSE_FILE.head(1)]).write_csv(tmp_path / "universe.csv")
    with pytest.raises(ProviderError, match=r"universe\.csv: tickers listed more than once: \['SPY'\]"):
        FilesProvider(tmp_path).universe()


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    write_dataset(tmp_path, "parquet", price_panel())
    (tmp_path / "AAA.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(ProviderError, match=r"AAA\.parquet: cannot read file"):
        FilesProvider(tmp_path).prices(date(2024, 1, 1), date(2024, 1, 31), ["AAA"])

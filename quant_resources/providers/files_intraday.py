"""Intraday bars from the user's files: `MARKET_DATA_DIR/<TICKER>_<interval>.csv|parquet`.

Columns: `timestamp` (the bar start) and open, high, low, close, volume (case-insensitive).
A timestamp with a time zone or UTC offset is converted to UTC; a timezone-naive timestamp means
UTC (counted as `naive_as_utc` in the repairs, never guessed to be exchange time). Cleaning follows
`clean_intraday` (duplicates, order, OHLC repairs, each counted).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from quant_lib.data.intraday import IntradayDataError
from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.cache import safe_file_stem
from quant_resources.providers.intraday import IntradaySource


class FilesIntraday(IntradaySource):
    name = "files"
    naive_is_utc = True

    def __init__(self, data_dir: str | Path):
        super().__init__()
        self.data_dir = Path(data_dir)

    def path(self, symbol: str, interval: str) -> Path | None:
        stem = f"{safe_file_stem(symbol)}_{interval}"
        for suffix in (".parquet", ".csv"):
            if (self.data_dir / f"{stem}{suffix}").exists():
                return self.data_dir / f"{stem}{suffix}"
        return None

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        path = self.path(symbol, interval)
        if path is None:
            raise NoDataError(f"files: {symbol} {interval}: no file {symbol}_{interval}.csv or .parquet in {self.data_dir}")
        try:
            frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, try_parse_dates=True)
        except Exception as error:  # noqa: BLE001 - unreadable file: name it
            raise ProviderError(f"files: {symbol} {interval}: cannot read {path.name}: {error}") from error
        frame = frame.rename({c: c.lower() for c in frame.columns})
        if "timestamp" in frame.columns and frame.schema["timestamp"] == pl.String:
            try:
                frame = frame.with_columns(pl.col("timestamp").str.to_datetime(time_unit="us"))
            except Exception as error:  # noqa: BLE001
                raise IntradayDataError(f"files: {symbol} {interval}: unparseable timestamp in {path.name}: {error}") from error
        return frame

"""Cache-through Parquet store of daily bars keyed by (ticker, interval), with partial fetch.

Seed 004 §4.2 (`DataStorage.get_or_fetch`) and §8.1: one Parquet file per (ticker, interval)
records the contiguous date range it covers (in the file's key-value metadata). A request
fetches only what lies outside that range: the days before the covered start and the days after
the covered end. New rows win over cached rows on the same date. Files are written atomically
(temp file in the same folder, fsync, `os.replace`); a corrupt file is deleted, logged and
re-fetched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from quant_lib.data.schemas import PRICE_COLUMNS, empty_frame
from quant_resources.providers.base import NoDataError

logger = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)
_METADATA_KEY = "quant_platform.cache"


def safe_file_stem(ticker: str) -> str:
    """A file-system safe name for a ticker (`EURUSD=X` -> `EURUSD_X`, `^GSPC` -> `_GSPC`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", ticker)


def atomic_write_parquet(frame: pl.DataFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write `frame` to `path` atomically: temp file in the same folder, fsync, os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            frame.write_parquet(handle, metadata=metadata)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


@dataclass(frozen=True)
class CachedBars:
    """The cached rows of one (ticker, interval) and the date range known to be complete."""

    frame: pl.DataFrame
    covered_start: date
    covered_end: date


@dataclass(frozen=True)
class FetchLog:
    """One call of the fetch function made by `get_or_fetch` (for logs and tests)."""

    ticker: str
    start: date
    end: date
    rows: int


class ParquetBarCache:
    """Parquet cache of daily bars (PRICE_COLUMNS) under `cache_dir/<interval>/<ticker>.parquet`.

    Subclasses cache other layouts by setting `COLUMNS` (it must hold a `date` column, the unit
    of coverage) and `KEY` (the column that identifies a bar)."""

    COLUMNS: dict = PRICE_COLUMNS
    KEY: str = "date"

    def __init__(self, cache_dir: str | os.PathLike[str]):
        self.cache_dir = Path(cache_dir)
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.fetch_log: list[FetchLog] = []

    def path(self, ticker: str, interval: str = "1d") -> Path:
        return self.cache_dir / safe_file_stem(interval) / f"{safe_file_stem(ticker)}.parquet"

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(path, threading.Lock())

    def read(self, ticker: str, interval: str = "1d") -> CachedBars | None:
        """The cached bars, or None when absent; a corrupt file is deleted (and logged)."""
        path = self.path(ticker, interval)
        if not path.exists():
            return None
        try:
            info = json.loads(pl.read_parquet_metadata(path)[_METADATA_KEY])
            if info["ticker"] != ticker or info["interval"] != interval:
                raise ValueError(f"file holds {info['ticker']}/{info['interval']}")
            frame = pl.read_parquet(path).select(list(self.COLUMNS)).cast(self.COLUMNS)  # type: ignore[arg-type]
            return CachedBars(
                frame=frame,
                covered_start=date.fromisoformat(info["covered_start"]),
                covered_end=date.fromisoformat(info["covered_end"]),
            )
        except Exception as error:  # noqa: BLE001 - any unreadable cache file is re-fetched
            logger.warning("corrupt cache file %s (%s: %s); deleting and re-fetching", path, type(error).__name__, error)
            path.unlink(missing_ok=True)
            return None

    def write(self, ticker: str, interval: str, bars: CachedBars) -> None:
        info = {
            "ticker": ticker,
            "interval": interval,
            "covered_start": bars.covered_start.isoformat(),
            "covered_end": bars.covered_end.isoformat(),
        }
        atomic_write_parquet(bars.frame, self.path(ticker, interval), {_METADATA_KEY: json.dumps(info)})

    @staticmethod
    def missing_ranges(cached: CachedBars | None, start: date, end: date) -> list[tuple[date, date]]:
        """Inclusive date ranges to fetch so that the cache covers [start, end] contiguously."""
        if start > end:
            return []
        if cached is None:
            return [(start, end)]
        ranges = []
        if start < cached.covered_start:
            ranges.append((start, cached.covered_start - ONE_DAY))
        if end > cached.covered_end:
            ranges.append((cached.covered_end + ONE_DAY, end))
        return ranges

    def get_or_fetch(
        self,
        ticker: str,
        start: date,
        end: date,
        fetch: Callable[[date, date], pl.DataFrame],
        interval: str = "1d",
        complete_until: date | None = None,
    ) -> pl.DataFrame:
        """Rows of [start, end] for `ticker`, fetching only the ranges the cache lacks.

        `fetch(a, b)` returns PRICE_COLUMNS rows for a <= date <= b, or raises NoDataError.
        NoDataError on a range adjacent to cached data means "no bars there" (a holiday, before
        listing, after delisting) and the range counts as covered; without cached data it
        propagates. Coverage never extends past `complete_until` (e.g. yesterday: today's bar
        may still change), so those days are fetched again next time.
        """
        path = self.path(ticker, interval)
        with self._lock(path):
            cached = self.read(ticker, interval)
            ranges = self.missing_ranges(cached, start, end)
            if ranges:
                fetched: list[pl.DataFrame] = []
                for range_start, range_end in ranges:
                    try:
                        rows = fetch(range_start, range_end)
                    except NoDataError:
                        if cached is None:
                            raise
                        logger.info("%s: no bars in %s..%s", ticker, range_start, range_end)
                        rows = empty_frame(self.COLUMNS)
                    rows = rows.select(list(self.COLUMNS)).cast(self.COLUMNS)  # type: ignore[arg-type]
                    rows = rows.filter(pl.col("date").is_between(range_start, range_end))
                    self.fetch_log.append(FetchLog(ticker, range_start, range_end, rows.height))
                    fetched.append(rows)
                cached = self._merge(cached, fetched, start, end, complete_until, self.KEY)
                self.write(ticker, interval, cached)
            assert cached is not None
            return cached.frame.filter(pl.col("date").is_between(start, end))

    @staticmethod
    def _merge(
        cached: CachedBars | None,
        fetched: list[pl.DataFrame],
        start: date,
        end: date,
        complete_until: date | None,
        key: str = "date",
    ) -> CachedBars:
        """Union of cached and fetched rows; on a shared date the fetched row wins."""
        parts = [frame.with_columns(pl.lit(1, dtype=pl.Int8).alias("_priority")) for frame in fetched]
        covered_start, covered_end = start, end
        if cached is not None:
            parts.append(cached.frame.with_columns(pl.lit(0, dtype=pl.Int8).alias("_priority")))
            covered_start = min(start, cached.covered_start)
            covered_end = max(end, cached.covered_end)
        if complete_until is not None:
            cached_end = cached.covered_end if cached is not None else covered_start - ONE_DAY
            covered_end = min(covered_end, max(complete_until, cached_end))
        merged = (
            pl.concat(parts)
            .sort(key, pl.col("_priority"), descending=[False, True], maintain_order=True)
            .unique(subset=[key], keep="first", maintain_order=True)
            .drop("_priority")
        )
        return CachedBars(frame=merged, covered_start=covered_start, covered_end=covered_end)

"""The user's own data: a folder of `<TICKER>.csv` / `<TICKER>.parquet` daily bars.

Layout of `data_dir`:

- `<TICKER>.csv` or `<TICKER>.parquet`: date, open, high, low, close, volume[, adj_close].
  Header names are matched case-insensitively, spaces become underscores ("Adj Close" works).
  Numbers: `N/A`, `NA`, `nan`, `null`, `-` or an empty cell is a missing value, `inf` or an
  overflowing `1e309` an infinite one; both reach the cleaning policy
  (`quant_lib.data.cleaning`), which drops or repairs the row and counts it. Any other text in a
  number column is an error naming the file, column, value and row.
  Dates are YYYY-MM-DD (a time or UTC offset after the date is ignored: the local date is kept).
- `universe.csv` (optional): ticker[, name, sector, asset_class, listed_date, delisted_date].
  Missing values default to name = ticker, sector "Unknown", asset_class "equity".
- `fundamentals.csv` or `fundamentals.parquet` (optional): ticker, period_end, available_at,
  metric, value (FUNDAMENTAL_FACT_COLUMNS). Absent -> no fundamentals.

The benchmark is the price file named after `benchmark_ticker`. `listed_date` defaults to the
first price date, `delisted_date` to the day after the last one (membership is
listed_date <= day < delisted_date, so a ticker is a member on every day it traded and data
after a day never changes that day's membership); a ticker still trading at the end of the
data set (last date = the latest date of any file) has no delisting date. Rows dated after today are
ignored for membership (logged with a count): one bad date never delists everyone else. A file
that ends early while its ticker is in `universe.csv` (no `delisted_date` there) and a
header-only file are reported by `stale_tickers` (the `market` assets warn and count them); a
header-only file is not in the universe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date
from functools import cached_property
from pathlib import Path

import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_FACT_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS, empty_frame
from quant_resources.providers.base import MarketDataProvider, ProviderError, check_date_range

logger = logging.getLogger(__name__)

PRICE_FILE_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")
RESERVED_STEMS = frozenset({"universe", "fundamentals"})
_DATE_PATTERN = "%Y-%m-%d"


def _normalize_column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _scan(path: Path) -> pl.LazyFrame:
    """Lazy scan with normalized column names; CSV columns are read as strings (parsed later)."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.scan_parquet(path)
        else:
            frame = pl.scan_csv(path, infer_schema=False)
        names = frame.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise ProviderError(f"{path}: cannot read file ({type(error).__name__}: {error})") from error
    renamed = {n: _normalize_column(n) for n in names}
    duplicates = {v for v in renamed.values() if list(renamed.values()).count(v) > 1}
    if duplicates:
        raise ProviderError(f"{path}: duplicate columns after normalizing names: {sorted(duplicates)}")
    return frame.rename(renamed)


def _date_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.date()
    if dtype == pl.String:
        return pl.col(column).str.strip_chars().str.slice(0, 10).str.to_date(_DATE_PATTERN, strict=False)
    return pl.col(column).cast(pl.Date, strict=False)


MISSING_MARKERS: tuple[str, ...] = ("", "n/a", "na", "#n/a", "nan", "null", "none", "-")
"""Cells read as a missing number (case-insensitive); the cleaning policy then decides (drop the
row, or repair volume / adj_close). `inf` and overflowing numbers (`1e309`) read as infinite."""


def _is_missing_marker(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_lowercase().is_in(list(MISSING_MARKERS))


def _float_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return (
            pl.when(_is_missing_marker(column))
            .then(pl.lit(None, dtype=pl.Float64))
            .otherwise(pl.col(column).str.strip_chars().cast(pl.Float64, strict=False))
        )
    return pl.col(column).cast(pl.Float64, strict=False)


def _parse(
    path: Path,
    frame: pl.LazyFrame,
    required: Sequence[str],
    dates: Sequence[str] = (),
    floats: Sequence[str] = (),
    strings: Sequence[str] = (),
    not_null: Sequence[str] = (),
    window: tuple[str, pl.Expr] | None = None,
) -> pl.DataFrame:
    """Select and type columns; a missing column, an unparseable value or a missing value in a
    `not_null` column is a ProviderError naming the file, the column and example rows.

    `window` = (date column, predicate) keeps only matching rows; when the column is stored as
    a date (Parquet) the predicate is pushed into the scan, else applied after validation.
    """
    schema = frame.collect_schema()
    missing = [c for c in required if c not in schema]
    if missing:
        raise ProviderError(f"{path}: missing required columns {missing}; has {schema.names()}")
    present = [c for c in (*dates, *floats, *strings) if c in schema]
    if window is not None and schema.get(window[0]) == pl.Date:
        frame = frame.filter(window[1])
        window = None
    exprs: list[pl.Expr] = []
    checks: list[pl.Expr] = []
    for column in present:
        dtype = schema[column]
        if column in dates:
            parsed = _date_expr(column, dtype)
        elif column in floats:
            parsed = _float_expr(column, dtype)
        else:
            text = pl.col(column).cast(pl.String).str.strip_chars()
            parsed = pl.when(text != "").then(text)
        exprs.append(parsed.alias(column))
        raw_present = pl.col(column).is_not_null()
        if dtype == pl.String:
            raw_present = raw_present & (pl.col(column).str.strip_chars() != "")
            if column in floats:
                raw_present = raw_present & ~_is_missing_marker(column)
        if column not in strings:
            checks.append((raw_present & parsed.is_null()).alias(f"__bad_{column}"))
        if column in not_null:
            checks.append((~raw_present).alias(f"__null_{column}"))
    try:
        collected = frame.select([*exprs, *checks]).with_row_index("__row").collect()
    except pl.exceptions.PolarsError as error:
        raise ProviderError(f"{path}: cannot read file ({type(error).__name__}: {error})") from error
    for column in present:
        for flag, kind in ((f"__bad_{column}", "unparseable"), (f"__null_{column}", "missing")):
            if flag not in collected.columns or not collected[flag].any():
                continue
            bad_rows = collected.filter(pl.col(flag))["__row"].head(3).to_list()
            examples = frame.select(pl.col(column)).collect()[column].gather(bad_rows).to_list()
            expected = "dates (YYYY-MM-DD)" if column in dates else "numbers" if column in floats else "values"
            raise ProviderError(
                f"{path}: column '{column}' has {int(collected[flag].sum())} {kind} values (expected {expected}), "
                f"e.g. {examples} at data rows {[r + 1 for r in bad_rows]}"
            )
    collected = collected.select(present)
    if window is not None:
        collected = collected.filter(window[1])
    return collected


class FilesProvider(MarketDataProvider):
    """Prices, universe and fundamentals from a folder of CSV / Parquet files (see module doc)."""

    def __init__(self, data_dir: str | Path, benchmark_ticker: str = "SPY", today: date | None = None):
        self.data_dir = Path(data_dir)
        self._today = today
        if not self.data_dir.is_dir():
            raise ProviderError(f"market data folder {self.data_dir} does not exist")
        self._benchmark = benchmark_ticker.strip().upper()
        if self._benchmark not in self.price_files:
            raise ProviderError(
                f"benchmark {self._benchmark!r} has no price file in {self.data_dir} "
                f"(expected {self._benchmark}.csv or {self._benchmark}.parquet; found {sorted(self.price_files)[:10]})"
            )

    @property
    def name(self) -> str:
        return f"files({self.data_dir})"

    @property
    def benchmark_ticker(self) -> str:
        return self._benchmark

    @cached_property
    def price_files(self) -> dict[str, Path]:
        """Ticker -> price file; a ticker with both a .parquet and a .csv file uses the Parquet one."""
        files: dict[str, Path] = {}
        for path in sorted(self.data_dir.iterdir()):
            suffix = path.suffix.lower()
            if not path.is_file() or suffix not in (".csv", ".parquet") or path.stem.lower() in RESERVED_STEMS:
                continue
            ticker = path.stem.strip().upper()
            if ticker in files and suffix == ".csv":
                continue
            files[ticker] = path
        return files

    def _optional_file(self, stem: str) -> Path | None:
        for suffix in (".parquet", ".csv"):
            for candidate in (self.data_dir / f"{stem}{suffix}", self.data_dir / f"{stem.upper()}{suffix}"):
                if candidate.is_file():
                    return candidate
        return None

    def _read_prices(self, ticker: str, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        path = self.price_files[ticker]
        window = None
        if start is not None and end is not None:
            window = ("date", pl.col("date").is_between(start, end))
        frame = _parse(
            path,
            _scan(path),
            required=PRICE_FILE_COLUMNS,
            dates=("date",),
            floats=("open", "high", "low", "close", "adj_close", "volume"),
            not_null=("date",),
            window=window,
        )
        if "adj_close" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
        return frame.with_columns(pl.lit(ticker).alias("ticker")).select(list(PRICE_COLUMNS))

    def prices(self, start: date, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        check_date_range(start, end)
        symbols = list(self.price_files) if tickers is None else [t.strip().upper() for t in tickers]
        unknown = [t for t in symbols if t not in self.price_files]
        if unknown:
            raise ProviderError(f"no price file for {unknown} in {self.data_dir}")
        frames = [self._read_prices(t, start, end) for t in symbols]
        if not frames:
            return empty_frame(PRICE_COLUMNS)
        return pl.concat(frames).sort("date", "ticker", maintain_order=True)

    @property
    def today(self) -> date:
        return self._today or date.today()

    @cached_property
    def _price_spans(self) -> pl.DataFrame:
        """ticker, first and last date of every price file and its rows dated after today (reads
        only the date column). `last` ignores future rows; a header-only file has null dates."""
        today = self.today
        rows = []
        for ticker, path in self.price_files.items():
            dates = _parse(path, _scan(path), required=("date",), dates=("date",), not_null=("date",))["date"]
            past = dates.filter(dates <= today)
            rows.append({"ticker": ticker, "first": past.min(), "last": past.max(), "future_rows": dates.len() - past.len()})
        spans = pl.DataFrame(rows, schema={"ticker": pl.String, "first": pl.Date, "last": pl.Date, "future_rows": pl.Int64})
        future = spans.filter(pl.col("future_rows") > 0)
        if future.height:
            logger.warning(
                "%s: %d rows dated after today (%s) ignored for membership: %s", self.data_dir,
                future["future_rows"].sum(), today, dict(future.select("ticker", "future_rows").iter_rows()),
            )
        empty = spans.filter(pl.col("first").is_null())["ticker"].to_list()
        if empty:
            logger.warning("%s: price files without rows (header only) for %s: not in the universe", self.data_dir, empty)
        return spans

    def stale_tickers(self, as_of: date) -> pl.DataFrame:
        """Tickers whose data ends before `as_of` (and before the rest of the data set) without a
        `delisted_date` in `universe.csv` to say so, and header-only files (`last_date` null).
        Columns: ticker, last_date."""
        spans = self._price_spans
        data_end = spans["last"].max()
        if data_end is None:
            return spans.select("ticker", pl.col("last").alias("last_date"))
        cutoff = min(as_of, data_end)
        declared: list[str] = []
        path = self._optional_file("universe")
        if path is not None:
            meta = self._universe_file(path)
            if "delisted_date" in meta.columns:
                declared = meta.filter(pl.col("delisted_date").is_not_null())["ticker"].to_list()
            listed = meta["ticker"].to_list()
        else:
            listed = []
        stale = spans.filter(
            pl.col("last").is_null()
            | ((pl.col("last") < cutoff) & pl.col("ticker").is_in(listed) & ~pl.col("ticker").is_in(declared))
        )
        return stale.select("ticker", pl.col("last").alias("last_date")).sort("ticker")

    def _universe_file(self, path: Path) -> pl.DataFrame:
        return _parse(
            path,
            _scan(path),
            required=("ticker",),
            dates=("listed_date", "delisted_date"),
            strings=("ticker", "name", "sector", "asset_class"),
            not_null=("ticker",),
        ).with_columns(pl.col("ticker").str.to_uppercase())

    def universe(self) -> pl.DataFrame:
        spans = self._price_spans.filter(pl.col("first").is_not_null())
        data_end = spans["last"].max()
        base = spans.select(
            "ticker",
            pl.col("first").alias("listed_date"),
            pl.when(pl.col("last") < data_end).then(pl.col("last").dt.offset_by("1d")).alias("delisted_date"),
        )
        path = self._optional_file("universe")
        if path is not None:
            meta = self._universe_file(path)
            duplicated = meta.filter(pl.col("ticker").is_duplicated())["ticker"].unique().to_list()
            if duplicated:
                raise ProviderError(f"{path}: tickers listed more than once: {sorted(duplicated)}")
            orphans = meta.join(self._price_spans, on="ticker", how="anti")["ticker"].to_list()
            if orphans:
                logger.warning("%s: no price file for %s; ignored", path, orphans)
            overrides = [c for c in ("listed_date", "delisted_date") if c in meta.columns]
            base = base.join(meta, on="ticker", how="left", suffix="_file")
            for column in overrides:
                base = base.with_columns(pl.coalesce(f"{column}_file", column).alias(column)).drop(f"{column}_file")
        for column in ("name", "sector", "asset_class"):
            if column not in base.columns:
                base = base.with_columns(pl.lit(None, dtype=pl.String).alias(column))
        return (
            base.with_columns(
                pl.col("name").fill_null(pl.col("ticker")),
                pl.col("sector").fill_null("Unknown"),
                pl.col("asset_class").fill_null("equity"),
                (pl.col("ticker") == self._benchmark).alias("is_benchmark"),
            )
            .select([pl.col(c).cast(t) for c, t in UNIVERSE_COLUMNS.items()])
            .sort("ticker")
        )

    def fundamentals(self, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        path = self._optional_file("fundamentals")
        if path is None:
            return empty_frame(FUNDAMENTAL_FACT_COLUMNS)
        facts = _parse(
            path,
            _scan(path),
            required=tuple(FUNDAMENTAL_FACT_COLUMNS),
            dates=("period_end", "available_at"),
            floats=("value",),
            strings=("ticker", "metric"),
            not_null=("ticker", "period_end", "available_at", "metric"),
            window=("available_at", pl.col("available_at") <= end),
        ).with_columns(pl.col("ticker").str.to_uppercase())
        if tickers is not None:
            facts = facts.filter(pl.col("ticker").is_in([t.strip().upper() for t in tickers]))
        early = facts.filter(pl.col("available_at") < pl.col("period_end"))
        if early.height:
            raise ProviderError(
                f"{path}: {early.height} facts available before their period ends, e.g. {early.head(3).to_dicts()}"
            )
        return facts.select(list(FUNDAMENTAL_FACT_COLUMNS)).sort("ticker", "available_at", "metric")

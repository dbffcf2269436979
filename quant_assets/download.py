"""`quant download --interval 1m|5m|15m|1h`: materialize the `intraday_bars` asset over the days asked.

The warehouse keeps one writer, so intraday bars are downloaded by materializing the asset (after
the market assets it reads, `prices`, for the same days when they are missing). A partition of
`intraday_bars` holds every (symbol, interval) of its day and is replaced as a whole, so the run
asks for the union of what the partitions already hold, the configured INTRADAY_SYMBOLS /
INTRADAY_INTERVALS and the requested symbols and interval: downloading AAPL 1m never drops the
5m bars `make run` wrote. The market_data resource gets that union through run config.

Before any request every (symbol, interval) the rebuilt partitions will hold is checked against the
provider's limits (`check_range`: Yahoo's 30 days of 1m and 60 days of 5m/15m bars, ccxt's
timeframes and symbol form), so a doomed download fails at once with the limit named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import polars as pl

INTRADAY_INTERVALS = ("1m", "5m", "15m", "1h")


class DownloadError(RuntimeError):
    """The download cannot be done as asked (the message says why)."""


def preflight(source: Any, symbols: Sequence[str], interval: str, first: date, last: date) -> None:
    """DownloadError when ``source`` does not offer ``interval`` or cannot serve [first, last]."""
    from quant_resources.providers.base import ProviderError

    if interval not in source.intervals:
        raise DownloadError(f"{source.name} does not offer {interval} bars (it offers {', '.join(source.intervals)})")
    for symbol in symbols:
        try:
            source.check_range(symbol, interval, first, last)
        except ProviderError as error:
            raise DownloadError(str(error)) from error


def check_plan(source: Any, symbols: Sequence[str], interval: str, plan: tuple[Sequence[str], Sequence[str]],
               first: date, last: date) -> None:
    """``preflight`` of the request, then of everything else the rebuilt partitions hold (naming why)."""
    preflight(source, symbols, interval, first, last)
    for other in plan[1]:
        try:
            preflight(source, plan[0], other, first, last)
        except DownloadError as error:
            raise DownloadError(
                f"{error}; the intraday_bars partitions also keep {other} bars of {', '.join(plan[0])} (held, or "
                "INTRADAY_SYMBOLS / INTRADAY_INTERVALS) and are rebuilt whole: ask for fewer --days or change "
                "INTRADAY_INTERVALS"
            ) from error


def _union(*groups: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(item for group in groups for item in group))


def partition_plan(held: pl.DataFrame, configured: tuple[Sequence[str], Sequence[str]], symbols: Sequence[str],
                   interval: str) -> tuple[list[str], list[str]]:
    """(symbols, intervals) the partitions are rebuilt with: held, then configured, then requested."""
    held_symbols = held["ticker"].unique(maintain_order=True).to_list() if held.height else []
    held_intervals = held["interval"].unique(maintain_order=True).to_list() if held.height else []
    return _union(held_symbols, configured[0], symbols), _union(held_intervals, configured[1], [interval])


def _held(warehouse: Any, first: date, last: date) -> pl.DataFrame:
    from quant_lib.data.calendar import shift_trading_days

    if not warehouse.path.exists() or not warehouse.has_table("intraday_bars"):
        return pl.DataFrame(schema={"ticker": pl.String, "interval": pl.String})
    rows = warehouse.read("intraday_bars", first, shift_trading_days(last, 1), columns=["ticker", "interval"])
    return rows.unique(maintain_order=True)


def _failure(result: Any) -> str:
    for event in result.all_events:
        error = event.step_failure_data.error if event.is_step_failure else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip()
    return "the run failed; see the log"


def download_intraday(defs: Any, instance: Any, market_data: Any, warehouse: Any, symbols: Sequence[str],
                      interval: str, first: date, last: date, echo: Callable[[str], None] = print) -> pl.DataFrame:
    """Materialize `intraday_bars` (and missing market days) for [first, last]; returns the bars
    per (ticker, interval) of the requested symbols now held: ticker, interval, bars, first, last."""
    from quant_assets.reporting import backfill_missing, run_partitions

    if interval not in INTRADAY_INTERVALS:
        raise DownloadError(f"interval {interval!r} is not offered: use 1d or one of {', '.join(INTRADAY_INTERVALS)}")
    source = market_data.get_intraday_source()
    configured = (market_data.resolve_intraday_symbols(), list(market_data.intraday_intervals))
    all_symbols, intervals = partition_plan(_held(warehouse, first, last), configured, symbols, interval)
    check_plan(source, symbols, interval, (all_symbols, intervals), first, last)
    job, graph = defs.resolve_job_def("daily_job"), defs.resolve_asset_graph()
    keys = [k for k in job.asset_layer.executable_asset_keys if graph.get(k).group_name == "market"]
    intraday = [k for k in keys if k.to_user_string() == "intraday_bars"]
    market = [k for k in keys if k not in intraday]
    results = backfill_missing(job, instance, [("market data (the daily prices intraday bars are checked against)",
                                                first, last, market)], total_steps=2, warehouse=warehouse)
    if not all(r.success for r in results):
        raise DownloadError(f"market data {first} .. {last} failed: {_failure(results[-1])}")
    echo(f"[2/2] intraday bars {first} .. {last} from {source.name}: {len(all_symbols)} symbols x "
         f"{', '.join(intervals)} (kept: what the partitions held and INTRADAY_SYMBOLS/INTERVALS) ...")
    config = {**market_data.model_dump(exclude_none=True), "intraday_symbols": all_symbols,
              "intraday_intervals": intervals}
    result = run_partitions(job, instance, first, last, intraday, run_config={"resources": {"market_data": {"config": config}}})
    if not result.success:
        raise DownloadError(f"intraday bars {first} .. {last} failed: {_failure(result)}")
    bars = warehouse.read("intraday_bars", first, None, columns=["ticker", "interval", "timestamp"])
    return (
        bars.filter(pl.col("ticker").is_in(list(symbols)) & (pl.col("interval") == interval))
        .group_by("ticker", "interval", maintain_order=True)
        .agg(pl.len().alias("bars"), pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"))
        .sort("ticker")
    )


def run_download(symbols: Sequence[str], interval: str, days: int, echo: Callable[[str], None] = print) -> pl.DataFrame:
    """`quant download --interval <intraday>`: the platform's definitions, instance, market data and
    warehouse over the last ``days`` trading days; prints the bars held per requested symbol."""
    from quant_assets.run_daily import prepare_dagster_home

    prepare_dagster_home()
    from dagster import DagsterInstance

    from quant_assets.definitions import defs
    from quant_lib.data.calendar import latest_trading_day, shift_trading_days
    from quant_resources.market_data import MarketDataResource
    from quant_resources.run_recovery import recover_and_report
    from quant_resources.settings import get_settings
    from quant_resources.warehouse import Warehouse

    settings = get_settings()
    last = latest_trading_day(date.today())
    first = shift_trading_days(last, -(days - 1))
    instance = DagsterInstance.get()
    recover_and_report(instance)
    held = download_intraday(defs, instance, MarketDataResource.from_settings(settings), Warehouse(settings.duckdb_path),
                             symbols, interval, first, last, echo)
    for row in held.iter_rows(named=True):
        echo(f"{row['ticker']:10s} {row['interval']:4s} {row['bars']:7d} bars  {row['first']} .. {row['last']}")
    missing = sorted(set(symbols) - set(held["ticker"].to_list()))
    if missing:
        raise DownloadError(f"no {interval} bars for {', '.join(missing)} in {first} .. {last} (the provider returned none: not listed or not traded then)")
    return held

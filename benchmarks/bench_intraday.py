"""Intraday benchmark: 60 trading days of 5-minute bars for 50 symbols (~234k rows) simulated,
checked and written to DuckDB as ONE single-run backfill of `intraday_bars`, against the baseline
of one run per partition (measured on a sample of partitions and extrapolated) in the same run.
Also: reading one symbol's 60 days back (a filtered query vs reading the table and filtering).

Target: the single-run backfill under 10 s on 2 cores.

    python benchmarks/bench_intraday.py [--symbols 50] [--days 60] [--interval 5m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--interval", default="5m", choices=["1m", "5m", "15m", "1h"])
    parser.add_argument("--sample-partitions", type=int, default=4)
    args = parser.parse_args()

    import polars as pl
    from dagster import materialize

    from quant_assets import intraday, market
    from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
    from quant_lib.data.calendar import shift_trading_days, trading_days
    from quant_resources.dagster_storage import ephemeral_instance
    from quant_resources.market_data import MarketDataResource
    from quant_resources.providers.simulated import SimulatedProvider
    from quant_resources.warehouse import Warehouse, WarehouseIOManager

    last = date(2024, 12, 31)
    first = shift_trading_days(last, 1 - args.days)
    days = trading_days(first, last)
    n_tickers = max(100, args.symbols)
    provider = SimulatedProvider(n_tickers=n_tickers, today=last)
    listed = provider.prices(last, last)["ticker"].to_list()
    symbols = ["SPY"] + [t for t in listed if t != "SPY"][: args.symbols - 1]
    tmp = Path(tempfile.mkdtemp(prefix="bench_intraday_"))
    db = tmp / "quant.duckdb"
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=str(db)),
        "market_data": MarketDataResource(
            provider="simulated", sim_n_tickers=n_tickers, simulated_today=last.isoformat(),
            intraday_symbols=symbols, intraday_intervals=[args.interval],
        ),
    }
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
    assets = [market.universe, market.prices, intraday.intraday_bars]
    with ephemeral_instance() as instance:
        assert materialize(assets[:2], resources=resources, instance=instance, tags=tags).success
        t0 = time.perf_counter()
        result = materialize(assets, selection=[intraday.intraday_bars], resources=resources, instance=instance, tags=tags)
        backfill_s = time.perf_counter() - t0
        assert result.success
        t0 = time.perf_counter()
        for day in days[-args.sample_partitions:]:
            assert materialize(assets, selection=[intraday.intraday_bars], resources=resources, instance=instance,
                               partition_key=day.isoformat()).success
        per_partition_s = (time.perf_counter() - t0) / args.sample_partitions

    wh = Warehouse(db)
    rows = wh.row_count("intraday_bars")
    symbol = symbols[1]
    t0 = time.perf_counter()
    with wh.connect(read_only=True) as conn:
        one = pl.from_arrow(conn.execute('select * from "intraday_bars" where ticker = ? order by timestamp', [symbol]).fetch_arrow_table())
    read_one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    whole = wh.read("intraday_bars").filter(pl.col("ticker") == symbol)
    read_all_s = time.perf_counter() - t0
    assert whole.height == one.height

    estimate = per_partition_s * len(days)
    print(f"intraday benchmark: {len(symbols)} symbols x {len(days)} trading days ({first}..{last}) of {args.interval} bars")
    print(f"{'measure':52s} {'value':>14s}")
    print(f"{'single-run backfill (simulate+check+write)':52s} {backfill_s:13.2f}s   (target < 10 s)")
    print(f"{'  rows intraday_bars':52s} {rows:14,d}")
    print(f"{'  rows/s':52s} {rows / backfill_s:14,.0f}")
    print(f"{'baseline: one run per partition (measured)':52s} {per_partition_s:13.3f}s")
    print(f"{'baseline extrapolated to all partitions':52s} {estimate:13.1f}s")
    print(f"{'ratio baseline / single-run':52s} {estimate / backfill_s:13.1f}x")
    print(f"{f'read one symbol ({symbol}), {len(days)} days, filtered query':52s} {read_one_s * 1000:12.1f}ms  ({one.height:,} rows)")
    print(f"{'read the whole table then filter (peer)':52s} {read_all_s * 1000:12.1f}ms")


if __name__ == "__main__":
    main()

"""Market-data benchmark: 500 simulated tickers x 10 years generated, cleaned, validated and
written to DuckDB as ONE single-run backfill of the `market` group, against the baseline of one
run per partition (what a backfill without the single-run policy does), measured in the same
run on a sample of partitions and extrapolated. Also: reading one day's partition vs the table.

Target: the single-run backfill under 30 s on 2 cores.

    python benchmarks/bench_market.py [--tickers 500] [--years 10] [--sample-partitions 8]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--sample-partitions", type=int, default=8)
    parser.add_argument(
        "--instance", choices=["memory", "sqlite"], default="memory",
        help="Dagster run storage: in-memory (the data path) or the on-disk SQLite of DAGSTER_HOME "
        "(adds Dagster's per-partition event bookkeeping, ~40 ms per asset partition here)",
    )
    args = parser.parse_args()

    from dagster import DagsterInstance, materialize

    from quant_assets import market
    from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
    from quant_lib.data.calendar import trading_days
    from quant_lib.data.simulate import SimulationConfig, simulate_market
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import Warehouse, WarehouseIOManager

    first, last = date(2015, 1, 5), date(2015 + args.years - 1, 12, 31)
    days = trading_days(first, last)
    tmp = Path(tempfile.mkdtemp(prefix="bench_market_"))
    try:
        shutil.copy(ROOT / "dagster.yaml", tmp / "dagster.yaml")
        db = tmp / "quant.duckdb"
        resources = {
            "warehouse_io_manager": WarehouseIOManager(database=str(db)),
            "market_data": MarketDataResource(provider="simulated", sim_n_tickers=args.tickers, simulated_today=last.isoformat()),
        }
        assets = [market.universe, market.prices, market.fundamentals]

        t0 = time.perf_counter()
        simulate_market(SimulationConfig(n_tickers=args.tickers, seed=12345))
        generate_s = time.perf_counter() - t0

        instance_cm = DagsterInstance.ephemeral() if args.instance == "memory" else DagsterInstance.from_config(str(tmp))
        with instance_cm as instance:
            t0 = time.perf_counter()
            result = materialize(
                assets, resources=resources, instance=instance,
                tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
            )
            backfill_s = time.perf_counter() - t0
            assert result.success

            sample = days[-args.sample_partitions:]
            t0 = time.perf_counter()
            for day in sample:
                assert materialize(assets, resources=resources, instance=instance, partition_key=day.isoformat()).success
            per_partition_s = (time.perf_counter() - t0) / len(sample)

        wh = Warehouse(db)
        rows = {t: wh.row_count(t) for t in ("universe", "prices", "fundamentals")}
        day = days[len(days) // 2]
        t0 = time.perf_counter()
        for _ in range(20):
            one_day = wh.read("prices", day, date.fromordinal(day.toordinal() + 1))
        read_day_s = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        whole = wh.read("prices")
        read_all_s = time.perf_counter() - t0

        total_rows = sum(rows.values())
        per_run_estimate = per_partition_s * len(days)
        print(f"market benchmark: {args.tickers} tickers + benchmark x {len(days)} trading days ({first}..{last}), {args.instance} run storage")
        print(f"{'measure':44s} {'value':>14s}")
        print(f"{'simulate 2005-2035 (other seed, for scale)':44s} {generate_s:13.2f}s")
        print(f"{'single-run backfill (generate+clean+check+write)':44s} {backfill_s:13.2f}s")
        for table, n in rows.items():
            print(f"{'  rows ' + table:44s} {n:14,d}")
        print(f"{'  rows/s (all three tables)':44s} {total_rows / backfill_s:14,.0f}")
        print(f"{'baseline: one run per partition (measured)':44s} {per_partition_s:13.3f}s")
        print(f"{'baseline extrapolated to all partitions':44s} {per_run_estimate:13.1f}s")
        print(f"{'ratio baseline / single-run':44s} {per_run_estimate / backfill_s:13.1f}x")
        print(f"{'read one day of prices':44s} {read_day_s * 1000:12.1f}ms  ({one_day.height} rows)")
        print(f"{'read the whole prices table':44s} {read_all_s * 1000:12.1f}ms  ({whole.height:,} rows)")
        print(f"{'ratio whole / one day':44s} {read_all_s / read_day_s:13.1f}x")
        print(f"target: single-run backfill < 30 s: {'MET' if backfill_s < 30 else 'NOT MET'} ({backfill_s:.1f}s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

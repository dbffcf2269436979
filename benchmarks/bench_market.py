"""Market-data benchmark: 500 simulated tickers x 10 years generated, cleaned, validated and
written to DuckDB as ONE single-run backfill of the `market` group, against the baseline of one
run per partition (what a backfill without the single-run policy does), measured in the same
run on a sample of partitions and extrapolated. Also: reading one day's partition vs the table.

Also Dagster's stock event-log storage against the batched one of `quant_resources.dagster_storage`
on the same one-year backfill. Runs against the on-disk SQLite storage `make run` uses (or
`--instance memory`, what the tests use).

Target: the single-run backfill under 30 s on 2 cores.

    python benchmarks/bench_market.py [--tickers 500] [--years 10] [--instance sqlite|memory]
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


def _instance(kind: str, home: Path, batched: bool):
    """A Dagster instance: in memory, or on disk in `home` (prepared as `make` prepares
    DAGSTER_HOME when `batched`; the project's settings with Dagster's stock storage otherwise)."""
    from dagster import DagsterInstance

    from quant_resources.dagster_storage import ephemeral_instance

    if kind == "memory":
        return ephemeral_instance() if batched else DagsterInstance.ephemeral()
    from quant_resources.dagster_home import prepare_dagster_home

    if batched:
        prepare_dagster_home(home, ROOT / "dagster.yaml")
    else:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--sample-partitions", type=int, default=8)
    parser.add_argument(
        "--instance", choices=["memory", "sqlite"], default="sqlite",
        help="Dagster storage: the on-disk SQLite of DAGSTER_HOME (what `make run` uses) or in memory (tests)",
    )
    parser.add_argument(
        "--stock-years", type=int, default=1,
        help="years backfilled on Dagster's stock event-log storage and on the batched one, for the ratio",
    )
    args = parser.parse_args()

    from dagster import materialize

    from quant_assets import market
    from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
    from quant_lib.data.calendar import trading_days
    from quant_lib.data.simulate import SimulationConfig, simulate_market
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import Warehouse, WarehouseIOManager

    first, last = date(2015, 1, 5), date(2015 + args.years - 1, 12, 31)
    days = trading_days(first, last)
    tmp = Path(tempfile.mkdtemp(prefix="bench_market_"))
    assets = [market.universe, market.prices, market.fundamentals]

    def resources(db: Path) -> dict:
        return {
            "warehouse_io_manager": WarehouseIOManager(database=str(db)),
            "market_data": MarketDataResource(provider="simulated", sim_n_tickers=args.tickers, simulated_today=last.isoformat()),
        }

    def backfill(instance, db: Path, start: date, end: date) -> float:
        t0 = time.perf_counter()
        result = materialize(
            assets, resources=resources(db), instance=instance,
            tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
        )
        assert result.success
        return time.perf_counter() - t0

    try:
        db = tmp / "quant.duckdb"
        t0 = time.perf_counter()
        simulate_market(SimulationConfig(n_tickers=args.tickers, seed=12345))
        generate_s = time.perf_counter() - t0

        with _instance(args.instance, tmp / "home", batched=True) as instance:
            backfill_s = backfill(instance, db, first, last)
            sample = days[-args.sample_partitions:]
            t0 = time.perf_counter()
            for day in sample:
                assert materialize(assets, resources=resources(db), instance=instance, partition_key=day.isoformat()).success
            per_partition_s = (time.perf_counter() - t0) / len(sample)

        stock_last = date(2015 + args.stock_years - 1, 12, 31)
        stock_days = len(trading_days(first, stock_last))
        with _instance(args.instance, tmp / "stock_home", batched=False) as instance:
            stock_s = backfill(instance, tmp / "stock.duckdb", first, stock_last)
        with _instance(args.instance, tmp / "batched_home", batched=True) as instance:
            batched_s = backfill(instance, tmp / "batched.duckdb", first, stock_last)

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
        print(f"market benchmark: {args.tickers} tickers + benchmark x {len(days)} trading days ({first}..{last}), {args.instance} Dagster storage")
        print(f"{'measure':52s} {'value':>14s}")
        print(f"{'simulate 2005-2035 (other seed, for scale)':52s} {generate_s:13.2f}s")
        print(f"{'single-run backfill (generate+clean+check+write)':52s} {backfill_s:13.2f}s")
        for table, n in rows.items():
            print(f"{'  rows ' + table:52s} {n:14,d}")
        print(f"{'  rows/s (all three tables)':52s} {total_rows / backfill_s:14,.0f}")
        print(f"{'baseline: one run per partition (measured)':52s} {per_partition_s:13.3f}s")
        print(f"{'baseline extrapolated to all partitions':52s} {per_run_estimate:13.1f}s")
        print(f"{'ratio baseline / single-run':52s} {per_run_estimate / backfill_s:13.1f}x")
        print(f"{f'{stock_days}-day backfill, stock Dagster event-log storage':52s} {stock_s:13.2f}s")
        print(f"{f'{stock_days}-day backfill, batched event-log storage':52s} {batched_s:13.2f}s")
        print(f"{'ratio stock / batched':52s} {stock_s / batched_s:13.1f}x")
        print(f"{'read one day of prices':52s} {read_day_s * 1000:12.1f}ms  ({one_day.height} rows)")
        print(f"{'read the whole prices table':52s} {read_all_s * 1000:12.1f}ms  ({whole.height:,} rows)")
        print(f"{'ratio whole / one day':52s} {read_all_s / read_day_s:13.1f}x")
        print(f"target: single-run backfill < 30 s: {'MET' if backfill_s < 30 else 'NOT MET'} ({backfill_s:.1f}s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""`make run`: backfill the history the daily assets need (one run), then the latest trading day,
then print a short summary of what is in the warehouse.

    python -m quant_assets.run_daily [--date YYYY-MM-DD] [--history-days N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date

from quant_resources.settings import PROJECT_ROOT, get_settings


def prepare_dagster_home() -> None:
    """Create DAGSTER_HOME (inside the warehouse) with its dagster.yaml and export it."""
    from quant_resources.dagster_home import prepare_dagster_home as write_home

    home = write_home(get_settings().dagster_home, PROJECT_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", type=date.fromisoformat, default=None, help="latest partition (default: the latest trading day)")
    parser.add_argument("--history-days", type=int, default=None, help="trading days of history to backfill first")
    args = parser.parse_args(argv)

    prepare_dagster_home()
    from dagster import DagsterInstance

    from quant_assets.definitions import defs
    from quant_assets.jobs import DAILY_LOOKBACK_DAYS
    from quant_assets.reporting import backfill_missing, print_summary, run_partitions
    from quant_lib.data.calendar import latest_trading_day, shift_trading_days
    from quant_resources.run_recovery import recover_and_report
    from quant_resources.warehouse import Warehouse

    settings = get_settings()
    latest = args.date or latest_trading_day(date.today())
    if latest < settings.quant_start_date:
        print(f"nothing to do: {latest} is before QUANT_START_DATE {settings.quant_start_date}", file=sys.stderr)
        return 1
    history = args.history_days if args.history_days is not None else settings.run_history_days
    outputs_first = max(settings.quant_start_date, shift_trading_days(latest, -history))
    market_first = max(settings.quant_start_date, shift_trading_days(outputs_first, -DAILY_LOOKBACK_DAYS))
    history_end = shift_trading_days(latest, -1)

    instance = DagsterInstance.get()
    recover_and_report(instance)
    job = defs.resolve_job_def("daily_job")
    graph = defs.resolve_asset_graph()
    daily_keys = [k for k in job.asset_layer.executable_asset_keys if graph.get(k).is_materializable]
    intraday_keys = [k for k in daily_keys if k.to_user_string() == "intraday_bars"]
    market_keys = [k for k in daily_keys if graph.get(k).group_name == "market" and k not in intraday_keys]
    output_keys = [k for k in daily_keys if k not in market_keys and k not in intraday_keys]
    intraday_first = max(settings.quant_start_date, shift_trading_days(latest, 1 - settings.intraday_history_days))
    started = time.perf_counter()
    print(f"quant-platform: {settings.market_data_provider} market, warehouse {settings.warehouse_dir}")
    steps = [
        ("market history (the lookback the daily assets read)", market_first, history_end, market_keys),
        ("daily outputs history", outputs_first, history_end, output_keys),
        (f"intraday bars (last {settings.intraday_history_days} trading days)", intraday_first, history_end, intraday_keys),
    ]
    results = backfill_missing(job, instance, steps, total_steps=4, warehouse=Warehouse(settings.duckdb_path))
    if all(r.success for r in results):
        print(f"[4/4] materializing {latest} ...", flush=True)
        results.append(run_partitions(job, instance, latest, latest))
    ok = all(r.success for r in results)
    print_summary(results, settings, latest, time.perf_counter() - started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

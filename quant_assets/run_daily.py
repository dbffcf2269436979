"""`make run`: backfill the history the daily assets need (one run), then the latest trading day,
then print a short summary of what is in the warehouse.

    python -m quant_assets.run_daily [--date YYYY-MM-DD] [--history-days N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from datetime import date

from quant_resources.settings import PROJECT_ROOT, get_settings


def _prepare_dagster_home() -> None:
    settings = get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", type=date.fromisoformat, default=None, help="latest partition (default: the latest trading day)")
    parser.add_argument("--history-days", type=int, default=None, help="trading days of history to backfill first")
    args = parser.parse_args(argv)

    _prepare_dagster_home()
    from dagster import BetaWarning, DagsterInstance, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)

    from quant_assets.definitions import defs
    from quant_assets.reporting import print_summary, run_partitions
    from quant_lib.data.calendar import latest_trading_day, shift_trading_days

    settings = get_settings()
    latest = args.date or latest_trading_day(date.today())
    history = args.history_days if args.history_days is not None else settings.run_history_days
    first = max(settings.quant_start_date, shift_trading_days(latest, -history))
    if latest < settings.quant_start_date:
        print(f"nothing to do: {latest} is before QUANT_START_DATE {settings.quant_start_date}", file=sys.stderr)
        return 1

    instance = DagsterInstance.get()
    job = defs.resolve_job_def("daily_job")
    started = time.perf_counter()
    print(f"quant-platform: {settings.market_data_provider} market, warehouse {settings.warehouse_dir}")
    results = []
    if first < latest:
        history_end = shift_trading_days(latest, -1)
        print(f"[1/2] backfilling {first} .. {history_end} as one run ...", flush=True)
        results.append(run_partitions(job, instance, first, history_end))
    print(f"[2/2] materializing {latest} ...", flush=True)
    results.append(run_partitions(job, instance, latest, latest))
    ok = all(r.success for r in results)
    print_summary(results, settings, latest, time.perf_counter() - started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

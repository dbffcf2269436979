"""`make backtest`: backfill the market and alpha history of the last `--years` (one run for what
is missing), materialize the weekly research job (walk-forward, GA search, backtests) for the
latest complete week, then print the headline results and where the tear sheet and MLflow are.

    python -m quant_assets.run_backtest [--years 2] [--week YYYY-MM-DD] [--population 12] [--generations 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

from quant_resources.settings import get_settings

RESEARCH_ASSETS = ("walk_forward", "ga_search", "backtests")
ML_ASSETS = ("meta_model", "meta_champion")
GA_PRICE_HISTORY_DAYS = 252 + 2 * 63 + 5
"""Trading days of prices the GA reads before its window (longest lookback + vol windows)."""


def latest_complete_week(day: date) -> date:
    """Saturday starting the latest Saturday..Friday week whose Friday is on or before `day`."""
    friday = day - timedelta(days=(day.weekday() - 4) % 7)
    return friday - timedelta(days=6)


def _parse_week(text: str) -> date:
    week = date.fromisoformat(text)
    if week.weekday() != 5:
        raise argparse.ArgumentTypeError(f"{text} is a {week:%A}: weekly partitions start on Saturdays")
    return week


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=float, default=2.0, help="years of rankings to backtest (backfilled when missing)")
    parser.add_argument("--week", type=_parse_week, default=None, help="week partition, a Saturday (default: the latest complete week)")
    parser.add_argument("--population", type=int, default=None, help="GA population size (asset default: 12)")
    parser.add_argument("--generations", type=int, default=None, help="GA generations (asset default: 3)")
    parser.add_argument("--with-portfolio", action="store_true", help="also backfill portfolio_targets and backtest the book")
    args = parser.parse_args(argv)
    if not args.years > 0:
        parser.error("--years must be > 0")
    return args


def _history_steps(defs, args: argparse.Namespace, rankings_first: date, market_first: date, friday: date) -> list:
    """The two backfill steps (market history, then what rankings and labels need) of the daily job."""
    from dagster import AssetSelection

    graph = defs.resolve_asset_graph()
    daily_job = defs.resolve_job_def("daily_job")
    daily_keys = {k for k in daily_job.asset_layer.executable_asset_keys if graph.get(k).is_materializable}
    market_keys = sorted(k for k in daily_keys if graph.get(k).group_name == "market")
    targets = ["rankings", "barrier_labels"] + (["portfolio_targets"] if args.with_portfolio else [])
    needed = AssetSelection.assets(*targets).upstream().resolve(graph, allow_missing=True)
    output_keys = sorted((needed & daily_keys) - set(market_keys))
    return [
        ("market history", market_first, friday, market_keys),
        (f"{', '.join(k.to_user_string() for k in output_keys)} history", rankings_first, friday, output_keys),
    ]


def _run_weekly(weekly_job, instance, args: argparse.Namespace, week: date) -> list:
    """The meta-labeler first (its blocking promotion check may stop meta_champion, not the
    research), then walk-forward, GA search and backtests."""
    from dagster import AssetKey

    window = {"history_years": args.years}
    ga = {**window, **({"population_size": args.population} if args.population else {}),
          **({"n_generations": args.generations} if args.generations else {})}
    ops_config = {"walk_forward": {"config": window}, "ga_search": {"config": ga},
                  "backtests": {"config": {**window, "use_portfolio_targets": args.with_portfolio}},
                  "meta_model": {"config": window}}
    return [
        weekly_job.execute_in_process(
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}},
                        "ops": {k: v for k, v in ops_config.items() if k in names}},
            instance=instance, partition_key=week.isoformat(), raise_on_error=False,
            asset_selection=[AssetKey(n) for n in names],
        )
        for names in (ML_ASSETS, RESEARCH_ASSETS)
    ]


def _print_report(results: list, ok: bool, week: date, friday: date, elapsed: float) -> None:
    from quant_assets.ml import meta_summary
    from quant_assets.reporting import run_report, text_table
    from quant_assets.research import GA_EXPERIMENT, STRATEGY_EXPERIMENT, research_summary
    from quant_resources.warehouse import Warehouse

    settings = get_settings()
    print()
    print("=" * 78)
    for result in results:
        print(run_report(result))
    warehouse = Warehouse(settings.duckdb_path)
    if ok:
        print()
        print(research_summary(warehouse, friday))
        folds = warehouse.read("walk_forward", week, week + timedelta(days=7), date_column="week")
        print(f"\nWalk-forward (top_n chosen on in-sample Sharpe, {folds.height} folds):")
        print(text_table(folds.select("fold", "test_start_date", "test_end_date", "param_top_n", "train_score", "test_sharpe_ratio")))
        print(meta_summary(warehouse, week))
    mlflow_db = settings.mlflow_dir / "mlflow.db"
    print(
        f"\nDone in {elapsed:.1f}s.\n"
        f"Tear sheet: {settings.reports_dir / f'tearsheet_{week.isoformat()}.html'}\n"
        f"Experiments: {settings.mlflow_dir / 'runs'} (trial pool `{STRATEGY_EXPERIMENT}`, GA runs `{GA_EXPERIMENT}`)\n"
        f"MLflow: `mlflow ui --backend-store-uri sqlite:///{mlflow_db} --port 5000` then http://127.0.0.1:5000"
    )
    print("=" * 78)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from quant_assets.run_daily import prepare_dagster_home

    prepare_dagster_home()
    from dagster import AssetKey, DagsterInstance

    from quant_assets.definitions import defs
    from quant_assets.jobs import DAILY_LOOKBACK_DAYS
    from quant_assets.reporting import backfill_missing
    from quant_lib.data.calendar import latest_trading_day, shift_trading_days
    from quant_resources.run_recovery import recover_and_report

    settings = get_settings()
    week = args.week or latest_complete_week(latest_trading_day(date.today()))
    friday = week + timedelta(days=6)
    if friday < settings.quant_start_date:
        print(f"nothing to do: week {week} ends before QUANT_START_DATE {settings.quant_start_date}", file=sys.stderr)
        return 1
    rankings_first = max(settings.quant_start_date, shift_trading_days(friday, -round(252 * args.years)))
    market_first = max(
        settings.quant_start_date, shift_trading_days(rankings_first, -max(DAILY_LOOKBACK_DAYS, GA_PRICE_HISTORY_DAYS))
    )
    instance = DagsterInstance.get()
    recover_and_report(instance)
    weekly_job = defs.resolve_job_def("weekly_research_job")
    missing = [name for name in RESEARCH_ASSETS + ML_ASSETS if AssetKey(name) not in weekly_job.asset_layer.executable_asset_keys]
    if missing:
        print(f"weekly_research_job lacks {missing}: register quant_assets.research in definitions.py / jobs.py", file=sys.stderr)
        return 1

    started = time.perf_counter()
    print(f"quant-platform backtest: {settings.market_data_provider} market, week {week} .. {friday}, "
          f"rankings from {rankings_first}, warehouse {settings.warehouse_dir}", flush=True)
    steps = _history_steps(defs, args, rankings_first, market_first, friday)
    results = backfill_missing(defs.resolve_job_def("daily_job"), instance, steps, total_steps=3)
    if all(r.success for r in results):
        print(f"[3/3] weekly research job for week {week} ...", flush=True)
        results += _run_weekly(weekly_job, instance, args, week)
    ok = all(r.success or _only_promotion_blocked(r) for r in results)
    _print_report(results, ok, week, friday, time.perf_counter() - started)
    return 0 if ok else 1


def _only_promotion_blocked(result) -> bool:
    """True when the run's only failure is meta_model's blocking promotion check (the challenger
    was registered but not promoted: a normal research outcome, reported, not an error)."""
    failed_checks = [c for c in result.get_asset_check_evaluations() if not c.passed]
    failed_steps = {e.step_key for e in result.get_step_failure_events()}
    return bool(failed_checks) and all(c.check_name == "promotion" for c in failed_checks) and failed_steps <= {"meta_model"}


if __name__ == "__main__":
    sys.exit(main())

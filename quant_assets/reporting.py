"""Run helpers and the human summary printed by `make run`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import polars as pl
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, JobDefinition

from quant_resources.settings import PlatformSettings
from quant_resources.warehouse import Warehouse, WarehouseError

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

SummarySection = Callable[[Warehouse, date], str]
SUMMARY_SECTIONS: list[SummarySection] = []
"""Functions that render one block of the `make run` summary for the latest day; each asset
group registers its own with `summary_section`."""


def summary_section(fn: SummarySection) -> SummarySection:
    SUMMARY_SECTIONS.append(fn)
    return fn


def run_partitions(
    job: JobDefinition,
    instance: DagsterInstance,
    first: date,
    last: date,
    asset_keys: Sequence[AssetKey] | None = None,
    run_config: dict | None = None,
) -> ExecuteInProcessResult:
    """Execute `job` (or its `asset_keys`) over the partition range [first, last] as one run,
    recorded in `instance` (`run_config` added to the quiet logger config)."""
    from quant_resources.run_recovery import run_tags

    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    selection = list(asset_keys) if asset_keys else None
    if first == last:
        return job.execute_in_process(
            run_config=quiet, instance=instance, partition_key=first.isoformat(),
            asset_selection=selection, raise_on_error=False, tags=run_tags(),
        )
    return job.execute_in_process(
        run_config=quiet,
        instance=instance,
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat(), **run_tags()},
        asset_selection=selection,
        raise_on_error=False,
    )


def backfill_missing(
    job: JobDefinition,
    instance: DagsterInstance,
    steps: Sequence[tuple[str, date, date, Sequence[AssetKey]]],
    total_steps: int,
    warehouse: Warehouse | None = None,
) -> list[ExecuteInProcessResult]:
    """Run each (label, first, last, asset_keys) step as one run over the span of partitions its
    assets still lack (in Dagster or in `warehouse`, by default the settings' warehouse); skip
    complete steps and stop at the first failed run."""
    if warehouse is None:
        from quant_resources.settings import get_settings

        warehouse = Warehouse(get_settings().duckdb_path)
    results: list[ExecuteInProcessResult] = []
    for n, (label, first, last, keys) in enumerate(steps, start=1):
        if first > last or not keys:
            continue
        todo = missing_partitions(instance, keys, first, last, warehouse)
        if todo is None:
            print(f"[{n}/{total_steps}] {label} {first} .. {last}: already materialized", flush=True)
            continue
        print(f"[{n}/{total_steps}] {label}: {todo[0]} .. {todo[1]} as one run ...", flush=True)
        results.append(run_partitions(job, instance, todo[0], todo[1], keys))
        if not results[-1].success:
            break
    return results


def missing_partitions(
    instance: DagsterInstance,
    asset_keys: Sequence[AssetKey],
    first: date,
    last: date,
    warehouse: Warehouse | None = None,
) -> tuple[date, date] | None:
    """The span from the first to the last trading day in [first, last] that some asset in
    `asset_keys` lacks, or None when everything is materialized. A day counts as held when
    Dagster recorded its materialization (blocking checks run before the write, so a failed
    partition never is) and, given `warehouse`, its write ledger holds it too."""
    from quant_lib.data.calendar import trading_days
    from quant_resources.warehouse import table_name_for

    days = trading_days(first, last)
    wanted = {d.isoformat() for d in days}
    missing: set[str] = set()
    for key in asset_keys:
        held = set(instance.get_materialized_partitions(key))
        in_warehouse = warehouse.held_days(table_name_for(key.path), days) if warehouse else None
        if in_warehouse is not None:
            held &= {d.isoformat() for d in in_warehouse}
        missing |= wanted - held
    if not missing:
        return None
    return date.fromisoformat(min(missing)), date.fromisoformat(max(missing))


def text_table(frame: pl.DataFrame, float_format: str = "{:.4f}") -> str:
    """A compact fixed-width text table."""
    if frame.is_empty():
        return "  (no rows)"
    cells = [[c for c in frame.columns]] + [
        [float_format.format(v) if isinstance(v, float) else str(v) for v in row] for row in frame.iter_rows()
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  " + "  ".join(v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_report(result: ExecuteInProcessResult) -> str:
    materialized: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        materialized[key] = materialized.get(key, 0) + 1
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    tags = result.dagster_run.tags
    scope = (
        f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
        if RANGE_START_TAG in tags
        else tags.get("dagster/partition", "")
    )
    lines = [
        f"run {result.run_id[:8]} [{scope}]: {'SUCCESS' if result.success else 'FAILURE'}; "
        f"materialized {', '.join(sorted(materialized)) or 'nothing'}; "
        f"checks {len(checks) - len(failed)}/{len(checks)} passed"
    ]
    for check in failed:
        lines.append(
            f"  FAILED check {check.asset_key.to_user_string()}:{check.check_name} ({check.severity.value}): "
            f"{check.description or ''}"
        )
    for failure in result.get_step_failure_events():
        lines.append(f"  FAILED step {failure.step_key}: {failure.event_specific_data.error.message.strip()[:500]}")
    return "\n".join(lines)


def warehouse_tables(warehouse: Warehouse) -> pl.DataFrame:
    rows = []
    with warehouse.connect(read_only=True) as conn:
        for (table,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'main' order by 1"
        ).fetchall():
            cols = {r[0] for r in conn.execute(f'describe "{table}"').fetchall()}
            span = (
                conn.execute(f'select min(date), max(date), count(*) from "{table}"').fetchone()
                if "date" in cols
                else (None, None, conn.execute(f'select count(*) from "{table}"').fetchone()[0])
            )
            rows.append({"table": table, "rows": span[2], "first_date": str(span[0]), "last_date": str(span[1])})
    return pl.DataFrame(rows)


def print_summary(
    results: list[ExecuteInProcessResult], settings: PlatformSettings, latest: date, seconds: float
) -> None:
    print()
    print("=" * 78)
    for result in results:
        print(run_report(result))
    warehouse = Warehouse(settings.duckdb_path)
    print(f"\nWarehouse {settings.duckdb_path}:")
    try:
        print(text_table(warehouse_tables(warehouse)))
    except WarehouseError as err:
        print(f"  {err}")
    for section in SUMMARY_SECTIONS:
        try:
            text = section(warehouse, latest)
        except WarehouseError as err:
            text = f"  ({err})"
        if text:
            print()
            print(text)
    print(
        f"\nDone in {seconds:.1f}s. Data: {settings.warehouse_dir} (DuckDB: quant.duckdb; "
        f"Dagster runs: {settings.dagster_home}).\n"
        "Open the UI with `make dev` and browse http://127.0.0.1:3000 (runs, asset lineage, checks);\n"
        f"query the data with `duckdb -readonly {settings.duckdb_path}` or "
        "`quant_resources.warehouse.Warehouse(path).read('prices')`."
    )
    print("=" * 78)

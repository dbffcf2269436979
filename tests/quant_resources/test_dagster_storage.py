"""The batched event-log storages leave exactly what Dagster's own storages leave, only faster.

A small daily-partitioned graph (an upstream asset, a downstream one with a blocking and a
warning check, single-run backfills) is materialized as a backfill, then re-materialized on a
sub-range, once on Dagster's stock storage and once on the batched one, in memory and on disk;
everything Dagster later reads back (materialized partitions, per-partition records and tags,
asset-key rows, planned and executed check rows, the run's event log) must agree.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    IOManager,
    Output,
    asset,
    materialize,
)
from dagster._core.events.log import EventLogEntry

from quant_resources.dagster_home import prepare_dagster_home
from quant_resources.dagster_storage import (
    BatchedInMemoryEventLogStorage,
    BatchedSqliteEventLogStorage,
    ephemeral_instance,
)

ROOT = Path(__file__).resolve().parents[2]
DAYS = DailyPartitionsDefinition(start_date="2024-01-01")
BACKFILL = ("2024-01-01", "2024-02-29")
RERUN = ("2024-02-01", "2024-02-10")
FAILING = ("2024-03-01", "2024-03-05")


class NullIOManager(IOManager):
    def handle_output(self, context, obj) -> None:
        return None

    def load_input(self, context):
        return None


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def upstream(context) -> Output[int]:
    return Output(len(context.partition_keys), metadata={"partitions": len(context.partition_keys)})


@asset(
    partitions_def=DAYS,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[upstream],
    check_specs=[
        AssetCheckSpec("positive", asset="downstream", blocking=True),
        AssetCheckSpec("small", asset="downstream"),
    ],
)
def downstream(context):
    if context.run.tags.get("fail"):
        raise RuntimeError("planted failure")
    yield Output(1, metadata={"first": context.partition_keys[0]})
    yield AssetCheckResult(check_name="positive", passed=True)
    yield AssetCheckResult(check_name="small", passed=False, severity=AssetCheckSeverity.WARN)


def _run(instance: DagsterInstance, first: str, last: str, fail: bool = False) -> str:
    from dagster import PartitionKeyRange

    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    result = materialize(
        [upstream, downstream], instance=instance, resources={"io_manager": NullIOManager()},
        tags={**tags, **({"fail": "yes"} if fail else {})}, raise_on_error=False,
    )
    assert result.success != fail
    assert len(DAYS.get_partition_keys_in_range(PartitionKeyRange(first, last))) > 1
    return result.run_id


def _state(instance: DagsterInstance, run_ids: list[str]) -> dict:
    """What Dagster reads back after the runs, with run ids replaced by their order."""
    run_order = {run_id: i for i, run_id in enumerate(run_ids)}
    state: dict = {}
    for key in (AssetKey("upstream"), AssetKey("downstream")):
        state[key, "materialized"] = sorted(instance.get_materialized_partitions(key))
        records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1000).records
        state[key, "records"] = sorted(
            (r.partition_key, run_order[r.run_id], tuple(sorted(r.asset_materialization.metadata)),
             tuple(sorted(r.asset_materialization.tags or {})))
            for r in records
        )
        tags = instance.get_event_tags_for_asset(key)
        state[key, "indexed_tag_keys"] = Counter(tuple(sorted(t)) for t in tags)
        [asset_record] = instance.get_asset_records([key])
        entry = asset_record.asset_entry
        state[key, "asset_entry"] = (
            run_order[entry.last_run_id],
            entry.last_materialization_record.partition_key,
            entry.last_materialization_record.storage_id
            == max(r.storage_id for r in records),
        )
        planned = instance.get_latest_planned_materialization_info(key, partition="2024-02-05")
        state[key, "planned"] = run_order[planned.run_id]
        failed = instance.fetch_failed_materializations(AssetRecordsFilter(asset_key=key), limit=1000).records
        state[key, "failed"] = sorted((r.partition_key, run_order[r.run_id]) for r in failed)
        attempts = instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(key)
        state[key, "unmaterialized_attempts"] = sorted((p, run_order[run_id]) for p, (run_id, _) in attempts.items())
    for name in ("positive", "small"):
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey("downstream"), name), limit=10_000
        )
        state[name, "executions"] = Counter((r.partition, run_order[r.run_id], r.status.value) for r in history)
    for run_id in run_ids:
        records = instance.get_records_for_run(run_id, limit=100_000).records
        state[run_order[run_id], "events"] = Counter(r.event_log_entry.dagster_event_type for r in records)
    return state


def _backfill_then_rerun(instance: DagsterInstance) -> dict:
    """A backfill, a re-run of a sub-range, then a failing run over a later range."""
    run_ids = [_run(instance, *BACKFILL), _run(instance, *RERUN), _run(instance, *FAILING, fail=True)]
    return _state(instance, run_ids)


def _home(tmp_path: Path, name: str, batched: bool) -> Path:
    """A Dagster home as `make` prepares it (batched) or with the project's settings only (stock)."""
    home = tmp_path / name
    if batched:
        return prepare_dagster_home(home, ROOT / "dagster.yaml")
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _on_disk(home: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return DagsterInstance.from_config(str(home))


@pytest.fixture
def batch_writes(monkeypatch):
    """Counts `store_event_batch` calls on both batched storages (the real method still runs)."""
    calls: list[int] = []
    for cls in (BatchedInMemoryEventLogStorage, BatchedSqliteEventLogStorage):
        original = cls.store_event_batch

        def spy(self, events, _original=original):
            calls.append(len(events))
            return _original(self, events)

        monkeypatch.setattr(cls, "store_event_batch", spy)
    return calls


def test_in_memory_batched_storage_matches_dagsters(batch_writes):
    with DagsterInstance.ephemeral() as stock, ephemeral_instance() as batched:
        assert isinstance(batched.event_log_storage, BatchedInMemoryEventLogStorage)
        expected = _backfill_then_rerun(stock)
        assert batch_writes == []
        assert _backfill_then_rerun(batched) == expected
    assert sorted(batch_writes) == [5, 10, 10, 12, 22, 60, 60, 122]  # planned (2 x days + 2 checks), outputs x days
    assert expected[AssetKey("downstream"), "materialized"][0] == "2024-01-01"
    assert expected[AssetKey("downstream"), "asset_entry"] == (2, "2024-02-10", True)  # last run: the failed one
    assert expected["positive", "executions"][(None, 1, "SUCCEEDED")] == 1
    assert expected["small", "executions"][("2024-02-05", 1, "PLANNED")] == 1
    assert expected[0, "events"][DagsterEventType.ASSET_MATERIALIZATION] == 2 * 60
    assert expected[AssetKey("downstream"), "unmaterialized_attempts"] == [(f"2024-03-0{d}", 2) for d in range(1, 6)]
    assert expected[AssetKey("upstream"), "unmaterialized_attempts"] == []


def test_on_disk_batched_storage_matches_dagsters(tmp_path, monkeypatch, batch_writes):
    with _on_disk(_home(tmp_path, "stock", batched=False), monkeypatch) as stock, \
            _on_disk(_home(tmp_path, "batched", batched=True), monkeypatch) as batched:
        assert isinstance(batched.event_log_storage, BatchedSqliteEventLogStorage)
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        expected = _backfill_then_rerun(stock)
        assert batch_writes == []
        assert _backfill_then_rerun(batched) == expected
    assert sorted(batch_writes) == [5, 10, 10, 12, 22, 60, 60, 122]  # planned (2 x days + 2 checks), outputs x days
    assert (tmp_path / "batched" / "history" / "runs" / "index.db").exists()


def test_prepared_home_enables_batching_in_the_default_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    home = _home(tmp_path, "home", batched=True)
    with _on_disk(home, monkeypatch) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) >= 2_600
        instance.get_runs()
    assert (home / "history" / "runs" / "index.db").exists()
    assert (home / "history" / "runs.db").exists()


def test_prepared_home_follows_the_project_settings(tmp_path):
    project = tmp_path / "dagster.yaml"
    project.write_text("telemetry:\n  enabled: false\n")
    home = prepare_dagster_home(tmp_path / "home", project)
    first = (home / "dagster.yaml").read_text()
    assert first.startswith("telemetry:") and f"base_dir: \"{home.resolve()}" in first
    project.write_text("telemetry:\n  enabled: true\n")
    prepare_dagster_home(home, project)
    assert "enabled: true" in (home / "dagster.yaml").read_text()
    assert "event_log_storage:" not in (ROOT / "dagster.yaml").read_text()
    project.write_text("event_log_storage:\n  module: x\n")
    with pytest.raises(ValueError, match="configures Dagster storage"):
        prepare_dagster_home(home, project)


def test_dagster_dev_without_dagster_home_uses_the_project_settings(tmp_path, monkeypatch):
    """`dagster dev` with no DAGSTER_HOME loads the project's dagster.yaml into a temporary home."""
    from dagster._core.instance.ref import InstanceRef

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path), config_dir=str(ROOT))) as instance:
        assert instance.get_runs() == []
        assert instance.get_settings("concurrency")["pools"]["default_limit"] == 1


def test_sqlite_storage_without_home_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_HOME"):
        BatchedSqliteEventLogStorage()


def _events_of_one_run() -> list[EventLogEntry]:
    with DagsterInstance.ephemeral() as stock:
        run_id = _run(stock, "2024-01-01", "2024-01-05")
        return [r.event_log_entry for r in stock.get_records_for_run(run_id, limit=10_000).records]


def test_batch_rejects_events_it_cannot_batch_and_watchers_see_every_event():
    events = _events_of_one_run()
    materializations = [e for e in events if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION]
    run_start = next(e for e in events if e.dagster_event_type == DagsterEventType.RUN_START)
    storage = BatchedInMemoryEventLogStorage()
    with pytest.raises(ValueError, match="cannot batch"):
        storage.store_event_batch([*materializations, run_start])
    other_run = materializations[0]._replace(run_id="another-run")
    with pytest.raises(ValueError, match="2 runs"):
        storage.store_event_batch([*materializations, other_run])

    seen: list[str] = []
    run_id = materializations[0].run_id
    storage.watch(run_id, None, lambda event, cursor: seen.append(cursor))
    storage.store_event_batch(materializations)
    assert len(seen) == len(materializations) == 10
    stored = storage.get_records_for_run(run_id, limit=100).records
    assert [r.event_log_entry.dagster_event.partition for r in stored] == [
        e.dagster_event.partition for e in materializations
    ]

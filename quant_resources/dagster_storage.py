"""Dagster event-log storages that write a batch of asset events in one transaction.

A single-run backfill of ten years of trading-day partitions makes Dagster log one
`ASSET_MATERIALIZATION_PLANNED` and one `ASSET_MATERIALIZATION` event per asset and partition
(about 15,600 events for the three `market` assets). Dagster already hands these to the storage
in batches (`EventLogStorage.store_event_batch`, enabled by `DAGSTER_EVENT_BATCH_SIZE`), but its
SQLite and in-memory storages fall back to one `store_event` per event: about eight SQL
statements, two connections and (on disk) two fsyncs each. The storages here write the whole
batch at once: one multi-row insert into the run's log, one into the cross-run index with the
asset-event tags, and one asset-key update per asset and event type (the last event wins, exactly
as sequential writes would leave it).

`DAGSTER_HOME/dagster.yaml` selects `BatchedSqliteEventLogStorage` (written by
`quant_resources.dagster_home`); tests and benchmarks use `ephemeral_instance()` in memory. Creating either storage sets `DAGSTER_EVENT_BATCH_SIZE` (default
`EVENT_BATCH_SIZE`) unless the environment already sets it.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import sqlalchemy as db
from dagster import DagsterInstance, Field, StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.instance import InstanceType
from dagster._core.storage.event_log import InMemoryEventLogStorage, SqliteEventLogStorage
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster_shared.serdes import serialize_value

EVENT_BATCH_SIZE = 10_000
"""Events buffered per batch before a write; a ten-year backfill's events for one asset fit in one."""


def enable_event_batching(size: int = EVENT_BATCH_SIZE) -> None:
    """Make Dagster hand batch-writable events to `store_event_batch` (see `DagsterInstance.handle_new_event`)."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(size))


class _BatchedWrites:
    """`store_event_batch` for the SQL event-log storages: same rows, one transaction per shard."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not events:
            return
        unsupported = sorted(
            {str(e.dagster_event_type) for e in events if e.dagster_event_type not in BATCH_WRITABLE_EVENTS}
        )
        if unsupported:
            raise ValueError(f"store_event_batch got events it cannot batch: {unsupported}")
        run_ids = {e.run_id for e in events}
        if len(run_ids) != 1:
            raise ValueError(f"store_event_batch got events of {len(run_ids)} runs; a batch belongs to one run")
        event_ids = self._insert_batch(events)
        for event, event_id in zip(events, event_ids):
            if event.dagster_event_type in ASSET_CHECK_EVENTS:
                self.store_asset_check_event(event, event_id)
        self._after_batch(events)

    @abstractmethod
    def _insert_batch(self, events: Sequence[EventLogEntry]) -> list[int]:
        """Insert the batch's rows (run log and index) with the asset-event index updates; the
        index's event ids, in order (0 for an event the index does not keep)."""

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """One PLANNED check-execution row per partition, as Dagster writes them, but with the event
        serialized once and the rows inserted with one executemany (Dagster re-serializes the event
        for every partition and compiles a multi-VALUES statement)."""
        planned = event.get_dagster_event().event_specific_data
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        shared = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**shared, "partition": key} for key in partition_keys])

    def _after_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Hook run after a batch is committed."""

    @staticmethod
    def _insert_rows(conn: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Insert event rows; their ids in insertion order (SQLite RETURNING, one statement per chunk)."""
        statement = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        return [row[0] for row in conn.execute(statement, rows)]

    def _index_asset_events(self, conn: Any, events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> None:
        """Tags of every asset event, then the asset-key row from the last event of each (asset, type)."""
        asset_events = [
            (event, event_id)
            for event, event_id in zip(events, event_ids)
            if event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key
        ]
        if not asset_events:
            return
        self._store_asset_event_tags(conn, [e for e, _ in asset_events], [i for _, i in asset_events])
        last_by_key_and_type: dict[tuple[str, Any], tuple[EventLogEntry, int]] = {}
        for event, event_id in asset_events:
            key = (event.get_dagster_event().asset_key.to_string(), event.dagster_event_type)
            last_by_key_and_type[key] = (event, event_id)
        for event, event_id in sorted(last_by_key_and_type.values(), key=lambda pair: pair[1]):
            self._store_asset_event(conn, event, event_id)


class BatchedSqliteEventLogStorage(_BatchedWrites, SqliteEventLogStorage):
    """`SqliteEventLogStorage` (one SQLite file per run plus `index.db`) with batched writes.

    `base_dir` (written by `quant_resources.dagster_home`) defaults to `$DAGSTER_HOME/history/runs`,
    where Dagster's default storage keeps it.
    """

    def __init__(self, base_dir: str | None = None, inst_data=None):
        enable_event_batching()
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "BatchedSqliteEventLogStorage needs config base_dir or the DAGSTER_HOME environment "
                    "variable; write the home's dagster.yaml with `python -m quant_resources.dagster_home HOME`"
                )
            base_dir = os.path.join(home, "history", "runs", "")
        super().__init__(base_dir=base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _insert_batch(self, events: Sequence[EventLogEntry]) -> list[int]:
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        indexed = [
            i for i, e in enumerate(events)
            if e.dagster_event_type in ASSET_EVENTS or e.dagster_event_type in ASSET_CHECK_EVENTS
        ]
        event_ids: list[int] = [0] * len(events)
        if not indexed:
            return event_ids
        with self.index_transaction() as conn:
            ids = self._insert_rows(conn, [rows[i] for i in indexed])
            for i, event_id in zip(indexed, ids):
                event_ids[i] = event_id
            self._index_asset_events(conn, [events[i] for i in indexed], ids)
        return event_ids


class BatchedInMemoryEventLogStorage(_BatchedWrites, InMemoryEventLogStorage):
    """`InMemoryEventLogStorage` with batched writes and the same watcher notifications."""

    def __init__(self, inst_data=None, preload=None):
        enable_event_batching()
        super().__init__(inst_data=inst_data, preload=preload)

    def _insert_batch(self, events: Sequence[EventLogEntry]) -> list[int]:
        rows = [self._event_to_row(event) for event in events]
        with self.index_transaction() as conn:
            ids = self._insert_rows(conn, rows)
            self._index_asset_events(conn, events, ids)
        return ids

    def _after_batch(self, events: Sequence[EventLogEntry]) -> None:
        from dagster._core.storage.event_log.base import EventLogCursor

        for event in events:
            self._storage_id += 1
            for handler in list(self._handlers[event.run_id]):
                try:
                    handler(event, str(EventLogCursor.from_storage_id(self._storage_id)))
                except Exception:
                    logging.exception("Exception in callback for event watch on run %s.", event.run_id)


def ephemeral_instance() -> DagsterInstance:
    """`DagsterInstance.ephemeral()` with `BatchedInMemoryEventLogStorage` (tests, benchmarks)."""
    from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
    from dagster._core.run_coordinator import DefaultRunCoordinator
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
    from dagster._core.storage.root import TemporaryLocalArtifactStorage
    from dagster._core.storage.runs import InMemoryRunStorage

    return DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(),
        event_storage=BatchedInMemoryEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )

"""Serving snapshots: versioned files, manifest, atomic pointer swap, grace-period pruning,
readers that never see a half-written snapshot."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date

import duckdb
import polars as pl
import pytest

from quant_resources.snapshots import (
    POINTER_NAME,
    SnapshotError,
    SnapshotPublisher,
    SnapshotReader,
    TableSpec,
    list_snapshot_ids,
    read_pointer,
)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "quant.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute(
        "create table rankings as select cast(date '2024-06-24' + to_days(cast(i // 10 as integer)) as date) as date, "
        "'T' || (i % 10) as ticker, i * 1.0 as score from range(50) t(i)"
    )
    conn.execute("create table regime as select cast(date '2024-01-01' + to_days(cast(i as integer)) as date) as date, 'Bull' as regime from range(200) t(i)")
    conn.execute("create table not_served as select 1 as x")
    conn.close()
    return path


SPECS = {"rankings": TableSpec("latest"), "regime": TableSpec("trailing", trailing_days=30), "absent": TableSpec()}


def test_publish_writes_versioned_file_manifest_and_pointer(tmp_path, warehouse):
    publisher = SnapshotPublisher(tmp_path / "serving")
    extra = {"backtest_equity": pl.DataFrame({"strategy": ["a", "a"], "equity": [1.0, 2.0]})}
    manifest = publisher.publish("run-1", warehouse, SPECS, extra)

    assert manifest.tables == {"rankings": 10, "regime": 31, "backtest_equity": 2}  # absent table skipped
    assert manifest.as_of == date(2024, 6, 28) and manifest.run_id == "run-1"
    pointer = json.loads((tmp_path / "serving" / POINTER_NAME).read_text())
    assert pointer["snapshot_id"] == manifest.snapshot_id and pointer["file"] == manifest.file
    snapshot = SnapshotReader(tmp_path / "serving").current()
    assert snapshot.query("select min(date) d from rankings")["d"][0] == date(2024, 6, 28)
    assert snapshot.query("select count(*) n from regime where date < ?", [date(2024, 6, 18)])["n"][0] == 0
    assert not snapshot.has_table("not_served")
    assert json.loads(snapshot.query("select manifest from _manifest")["manifest"][0])["run_id"] == "run-1"

    second = publisher.publish("run-2", warehouse, SPECS)
    assert second.snapshot_id != manifest.snapshot_id and second.file != manifest.file
    assert SnapshotReader(tmp_path / "serving").current().snapshot_id == second.snapshot_id


def test_reader_without_snapshot_names_the_fix(tmp_path):
    with pytest.raises(SnapshotError, match="make run"):
        SnapshotReader(tmp_path).current()


def test_failed_publish_keeps_the_previous_snapshot(tmp_path, warehouse):
    publisher = SnapshotPublisher(tmp_path / "serving")
    first = publisher.publish("good", warehouse, SPECS)
    bad = {"bad name; drop table rankings": pl.DataFrame({"x": [1]})}
    with pytest.raises(SnapshotError, match="invalid table name"):
        publisher.publish("bad", warehouse, SPECS, bad)
    assert read_pointer(tmp_path / "serving").snapshot_id == first.snapshot_id
    assert list_snapshot_ids(tmp_path / "serving") == [first.snapshot_id]
    assert not list((tmp_path / "serving").glob("*.partial*"))


def test_prune_keeps_current_and_recent_and_removes_expired(tmp_path, warehouse):
    publisher = SnapshotPublisher(tmp_path / "serving", grace_seconds=60, keep=2)
    ids = [publisher.publish(f"r{i}", warehouse, {"rankings": TableSpec()}).snapshot_id for i in range(4)]
    assert list_snapshot_ids(tmp_path / "serving") == ids  # within the grace period nothing goes
    leftover = tmp_path / "serving" / "snap_crashed.duckdb.partial"
    leftover.write_bytes(b"half")
    removed = publisher.prune(now=time.time() + 120)
    assert removed == ids[:2]
    assert list_snapshot_ids(tmp_path / "serving") == ids[2:]
    assert not leftover.exists()
    assert SnapshotReader(tmp_path / "serving").current().snapshot_id == ids[-1]


def test_reader_never_sees_a_half_written_snapshot(tmp_path, warehouse):
    """A reader polling while snapshots are published back to back always finds a complete one:
    every table of the manifest present with exactly the manifest's row count."""
    publisher = SnapshotPublisher(tmp_path / "serving", grace_seconds=0.5, keep=2)
    publisher.publish("r0", warehouse, SPECS)
    reader = SnapshotReader(tmp_path / "serving")
    stop, errors, seen = threading.Event(), [], set()

    def read_loop():
        while not stop.is_set():
            try:
                snap = reader.current()
                for table, rows in snap.manifest.tables.items():
                    got = snap.query(f'select count(*) n from "{table}"')["n"][0]
                    if got != rows:
                        errors.append(f"{snap.snapshot_id} {table}: {got} != {rows}")
                seen.add(snap.snapshot_id)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                errors.append(repr(exc))

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for i in range(1, 6):
            publisher.publish(f"r{i}", warehouse, SPECS, {"n": pl.DataFrame({"i": list(range(i))})})
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert len(seen) >= 2


def test_pointer_swap_is_atomic_replace(tmp_path, warehouse, monkeypatch):
    """A crash between writing the snapshot file and swapping the pointer leaves the old pointer."""
    publisher = SnapshotPublisher(tmp_path / "serving")
    first = publisher.publish("r1", warehouse, SPECS)
    real_replace = os.replace

    def crash_on_pointer(src, dst):
        if str(dst).endswith(POINTER_NAME):
            raise OSError("simulated crash before the pointer swap")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_pointer)
    with pytest.raises(OSError, match="simulated crash"):
        publisher.publish("r2", warehouse, SPECS)
    monkeypatch.setattr(os, "replace", real_replace)
    assert SnapshotReader(tmp_path / "serving").current().snapshot_id == first.snapshot_id
    assert not list((tmp_path / "serving").glob(".*.tmp"))

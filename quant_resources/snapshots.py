"""Published serving snapshots: what the API reads instead of the live warehouse.

DuckDB allows one writer process *or* many readers per file, never both: an API holding a read
connection on `quant.duckdb` would make the next Dagster run fail, and a read opened during a
run fails itself. So the only writer (the daily and weekly jobs) ends each run by publishing a
snapshot:

1. `snap_<id>.duckdb.partial` is written with the tables the API serves (copied from the
   warehouse attached read-only, plus frames handed in such as backtest equity curves) and a
   `_manifest` table; the file is closed, fsynced and renamed to `snap_<id>.duckdb`.
2. `snap_<id>.json` (the manifest: snapshot id, run id, as-of date, published at, tables with
   row counts) is written atomically (temp file, fsync, `os.replace`).
3. The pointer `CURRENT.json` (the manifest again) is swapped atomically with `os.replace`.
   Readers resolve the pointer on every request, so they see either the old snapshot or the
   new one, never a file being written.
4. Snapshots superseded more than `grace_seconds` ago are deleted (the newest `keep` always
   stay), and so are `.partial` leftovers of crashed publishes.

Every snapshot has a new file name: within one process DuckDB reuses an open database by path,
so replacing a file under the same name would serve stale data. Readers open each snapshot
read-only once and cache the connection per snapshot id (`SnapshotReader`).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from quant_resources.atomic import fsync_dir, write_atomically

POINTER_NAME = "CURRENT.json"
SNAPSHOT_PREFIX = "snap_"
MANIFEST_TABLE = "_manifest"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SNAPSHOT_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[A-Za-z0-9]{1,16}$")


@dataclass(frozen=True)
class TableSpec:
    """Which rows of a warehouse table a snapshot keeps.

    `mode`: "latest" (rows of the newest `date_column` value), "trailing" (the last
    `trailing_days` calendar days before the newest value) or "all".
    """

    mode: str = "latest"
    date_column: str = "date"
    trailing_days: int = 400


SERVING_TABLES: dict[str, TableSpec] = {
    "universe": TableSpec("latest"),
    "fundamentals": TableSpec("latest"),
    "prices": TableSpec("latest"),
    "factor_values": TableSpec("latest"),
    "factor_scores": TableSpec("latest"),
    "regime": TableSpec("trailing"),
    "rankings": TableSpec("latest"),
    "portfolio_targets": TableSpec("latest"),
    "risk_report": TableSpec("latest"),
    "holdings": TableSpec("latest"),
    "trade_list": TableSpec("latest"),
    "orders": TableSpec("latest"),
    "fills": TableSpec("latest"),
    "execution_schedule": TableSpec("latest"),
    "backtests": TableSpec("all", "week"),
    "walk_forward": TableSpec("latest", "week"),
    "ga_search": TableSpec("latest", "week"),
    # Tables of the learning and trading layers: exported when the warehouse has them.
    "meta_confidence": TableSpec("latest"),
    "meta_model": TableSpec("latest", "week"),
    "meta_champion": TableSpec("all", "week"),
    "model_checkpoints": TableSpec("latest", "week"),
    "model_predictions": TableSpec("latest"),
    "ensemble_weights": TableSpec("latest"),
    "live_equity": TableSpec("trailing"),
    "live_fills": TableSpec("trailing", trailing_days=30),
}
"""The warehouse tables the API serves and the rows it needs of each."""


class SnapshotError(RuntimeError):
    """No snapshot can be published or read as asked."""


@dataclass(frozen=True)
class SnapshotManifest:
    snapshot_id: str
    run_id: str
    as_of: date | None
    published_at: datetime
    tables: dict[str, int]
    file: str

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "published_at": self.published_at.isoformat(),
            "tables": dict(self.tables),
            "file": self.file,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SnapshotManifest:
        as_of = data.get("as_of")
        return cls(
            snapshot_id=str(data["snapshot_id"]),
            run_id=str(data.get("run_id", "")),
            as_of=date.fromisoformat(as_of) if as_of else None,
            published_at=datetime.fromisoformat(data["published_at"]),
            tables={str(k): int(v) for k, v in dict(data.get("tables", {})).items()},
            file=str(data["file"]),
        )

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(timezone.utc)) - self.published_at).total_seconds()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def new_snapshot_id(run_id: str, now: datetime | None = None) -> str:
    """Sortable, unique per publish: UTC time to the microsecond plus the run id's first 8 characters."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    tail = re.sub(r"[^A-Za-z0-9]", "", run_id)[:8] or "manual"
    return f"{stamp}-{tail}"


def _row_filter(conn: duckdb.DuckDBPyConnection, source: str, spec: TableSpec) -> tuple[str, list]:
    columns = {r[0] for r in conn.execute(f"describe {source}").fetchall()}
    if spec.mode == "all" or spec.date_column not in columns:
        return "", []
    newest = conn.execute(f'select max("{spec.date_column}") from {source}').fetchone()[0]
    if newest is None:
        return "", []
    if spec.mode == "latest":
        return f' where "{spec.date_column}" = ?', [newest]
    if spec.mode == "trailing":
        return f' where "{spec.date_column}" >= ? - to_days(?)', [newest, spec.trailing_days]
    raise SnapshotError(f"unknown table mode {spec.mode!r}")


class SnapshotPublisher:
    """Writes snapshots into `serving_dir` and swaps the pointer (the jobs' last step)."""

    def __init__(self, serving_dir: str | Path, grace_seconds: float = 3600.0, keep: int = 2):
        self.serving_dir = Path(serving_dir)
        self.grace_seconds = grace_seconds
        self.keep = max(1, keep)

    def publish(
        self,
        run_id: str,
        warehouse_path: str | Path | None = None,
        tables: Mapping[str, TableSpec] | None = None,
        frames: Mapping[str, pl.DataFrame] | None = None,
        as_of: date | None = None,
    ) -> SnapshotManifest:
        """Export `tables` (those present) from the warehouse and `frames`, then swap the pointer."""
        self.serving_dir.mkdir(parents=True, exist_ok=True)
        snapshot_id = new_snapshot_id(run_id)
        final = self.serving_dir / f"{SNAPSHOT_PREFIX}{snapshot_id}.duckdb"
        partial = final.with_name(final.name + ".partial")
        try:
            counts = self._write_file(partial, warehouse_path, tables or {}, frames or {})
            as_of = as_of or self._as_of(partial)
            manifest = SnapshotManifest(snapshot_id, run_id, as_of, datetime.now(timezone.utc), counts, final.name)
            self._write_manifest_table(partial, manifest)
            _fsync_file(partial)
            os.replace(partial, final)
            fsync_dir(self.serving_dir)
        except BaseException:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
            raise
        body = json.dumps(manifest.to_json(), indent=2).encode()
        write_atomically(self.serving_dir / f"{SNAPSHOT_PREFIX}{snapshot_id}.json", body)
        write_atomically(self.serving_dir / POINTER_NAME, body)
        self.prune()
        return manifest

    def _write_file(self, path, warehouse_path, tables, frames) -> dict[str, int]:
        counts: dict[str, int] = {}
        conn = duckdb.connect(str(path))
        try:
            if warehouse_path is not None and tables:
                literal = str(warehouse_path).replace("'", "''")  # ATTACH takes no parameters
                conn.execute(f"attach '{literal}' as wh (read_only)")
                present = {r[0] for r in conn.execute(
                    "select table_name from information_schema.tables where table_catalog = 'wh'"
                ).fetchall()}
                for name, spec in tables.items():
                    if name in present:
                        counts[name] = self._copy_table(conn, name, spec)
                conn.execute("detach wh")
            for name, frame in frames.items():
                _check_identifier(name)
                conn.register("incoming_frame", frame.to_arrow())
                conn.execute(f'create or replace table main."{name}" as select * from incoming_frame')
                conn.unregister("incoming_frame")
                counts[name] = frame.height
            conn.execute("checkpoint")
        finally:
            conn.close()
        return counts

    @staticmethod
    def _copy_table(conn: duckdb.DuckDBPyConnection, name: str, spec: TableSpec) -> int:
        _check_identifier(name)
        source = f'wh.main."{name}"'
        where, params = _row_filter(conn, source, spec)
        conn.execute(f'create table main."{name}" as select * from {source}{where}', params)
        return conn.execute(f'select count(*) from main."{name}"').fetchone()[0]

    @staticmethod
    def _as_of(path: Path) -> date | None:
        conn = duckdb.connect(str(path), read_only=True)
        try:
            for table in ("rankings", "regime", "portfolio_targets"):
                if conn.execute("select count(*) from information_schema.tables where table_name = ?", [table]).fetchone()[0]:
                    newest = conn.execute(f'select max("date") from "{table}"').fetchone()[0]
                    return newest.date() if isinstance(newest, datetime) else newest
        finally:
            conn.close()
        return None

    @staticmethod
    def _write_manifest_table(path: Path, manifest: SnapshotManifest) -> None:
        conn = duckdb.connect(str(path))
        try:
            conn.execute(f"create table {MANIFEST_TABLE} (manifest varchar)")
            conn.execute(f"insert into {MANIFEST_TABLE} values (?)", [json.dumps(manifest.to_json())])
            conn.execute("checkpoint")
        finally:
            conn.close()

    def prune(self, now: float | None = None) -> list[str]:
        """Delete snapshots superseded more than `grace_seconds` ago (never the current one nor
        the newest `keep`) and `.partial` leftovers older than the grace period; returns the ids."""
        now = time.time() if now is None else now
        current = read_pointer(self.serving_dir)
        ids = list_snapshot_ids(self.serving_dir)
        removed = []
        for older, newer in zip(ids[: -self.keep], ids[1:]):
            superseded_at = (self.serving_dir / f"{SNAPSHOT_PREFIX}{newer}.json").stat().st_mtime
            if (current and older == current.snapshot_id) or now - superseded_at < self.grace_seconds:
                continue
            for suffix in (".duckdb", ".json"):
                (self.serving_dir / f"{SNAPSHOT_PREFIX}{older}{suffix}").unlink(missing_ok=True)
            removed.append(older)
        for leftover in self.serving_dir.glob(f"{SNAPSHOT_PREFIX}*.partial*"):
            if now - leftover.stat().st_mtime > self.grace_seconds:
                leftover.unlink(missing_ok=True)
        return removed


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise SnapshotError(f"invalid table name {name!r}")


def list_snapshot_ids(serving_dir: str | Path) -> list[str]:
    """Ids of the complete snapshots (file and manifest present), oldest first."""
    folder = Path(serving_dir)
    ids = []
    for manifest in folder.glob(f"{SNAPSHOT_PREFIX}*.json"):
        snapshot_id = manifest.stem[len(SNAPSHOT_PREFIX):]
        if _SNAPSHOT_ID.match(snapshot_id) and manifest.with_suffix(".duckdb").exists():
            ids.append(snapshot_id)
    return sorted(ids)


def read_pointer(serving_dir: str | Path) -> SnapshotManifest | None:
    """The manifest the pointer names, or None before the first publish."""
    try:
        data = json.loads((Path(serving_dir) / POINTER_NAME).read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, OSError) as exc:
        raise SnapshotError(f"snapshot pointer {Path(serving_dir) / POINTER_NAME} is unreadable: {exc}") from exc
    return SnapshotManifest.from_json(data)


@dataclass
class Snapshot:
    """One open snapshot: its manifest and a read-only connection (use `query` / `rows`,
    thread-safe). A snapshot never changes, so `rows` memoizes results (bounded LRU)."""

    manifest: SnapshotManifest
    connection: duckdb.DuckDBPyConnection
    _columns: dict[str, list[str]] = field(default_factory=dict)
    _memo: OrderedDict = field(default_factory=OrderedDict)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock)
    memo_size: int = 512

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    def has_table(self, table: str) -> bool:
        return table in self.manifest.tables

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            _check_identifier(table)
            cursor = self.connection.cursor()
            try:
                self._columns[table] = [r[0] for r in cursor.execute(f'describe "{table}"').fetchall()]
            finally:
                cursor.close()
        return self._columns[table]

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> tuple[dict[str, Any], ...]:
        """Result rows as read-only-by-convention dicts (non-finite floats as None), memoized per
        (sql, params): callers copy before changing them."""
        key = (sql, tuple(tuple(p) if isinstance(p, list) else p for p in params or ()))
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, list(params or []))
            names = [d[0] for d in cursor.description]
            result = tuple(dict(zip(names, map(_finite_or_none, row))) for row in cursor.fetchall())
        finally:
            cursor.close()
        with self._memo_lock:
            self._memo[key] = result
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return result

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a parameterized query on a cursor of its own (DuckDB cursors are per-thread)."""
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql, list(params or [])).pl()
        finally:
            cursor.close()


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class SnapshotReader:
    """Resolves the pointer on every call and keeps one read-only connection per snapshot id
    (the newest `cache_size`); connections of evicted snapshots close when their last cursor does."""

    def __init__(self, serving_dir: str | Path, cache_size: int = 2):
        self.serving_dir = Path(serving_dir)
        self.cache_size = max(1, cache_size)
        self._cache: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def current_id(self) -> str:
        """Id of the published snapshot (the pointer only; nothing is opened)."""
        manifest = read_pointer(self.serving_dir)
        if manifest is None:
            raise SnapshotError(f"no snapshot published in {self.serving_dir} yet")
        return manifest.snapshot_id

    def current(self) -> Snapshot:
        manifest = read_pointer(self.serving_dir)
        if manifest is None:
            raise SnapshotError(
                f"no snapshot published in {self.serving_dir} yet: run the daily job (`make run`) first"
            )
        with self._lock:
            cached = self._cache.get(manifest.snapshot_id)
            if cached is not None:
                return cached
            path = self.serving_dir / manifest.file
            try:
                # One thread per query: API queries are tiny; requests run in parallel instead.
                connection = duckdb.connect(str(path), read_only=True, config={"threads": 1})
            except (duckdb.Error, OSError) as exc:
                raise SnapshotError(f"snapshot {manifest.snapshot_id} cannot be opened: {exc}") from exc
            snapshot = Snapshot(manifest, connection)
            self._cache[manifest.snapshot_id] = snapshot
            for stale in sorted(self._cache)[: -self.cache_size]:
                self._cache.pop(stale)
            return snapshot

    def close(self) -> None:
        with self._lock:
            for snapshot in self._cache.values():
                snapshot.connection.close()
            self._cache.clear()


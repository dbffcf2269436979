"""The DuckDB warehouse: one table per asset, long format, partitions replaced atomically.

`Warehouse` is the plain reader/writer (notebooks, scripts, the API); `WarehouseIOManager` is
the Dagster I/O manager every asset uses. Writing a partition range is one transaction:
delete the range, insert the new rows, commit; a failure rolls back and the previous data stays.
DuckDB allows one writer process at a time: Dagster's `duckdb_warehouse` pool (limit 1,
`dagster.yaml`) serializes every asset step that touches the file, across runs.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

WAREHOUSE_POOL = "duckdb_warehouse"
LEDGER_TABLE = "quant_meta.partition_writes"
"""One row per partition-range write (table, start, end exclusive, rows), committed in the same
transaction as the rows: what the warehouse holds, whatever Dagster's event log says."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
DEFAULT_LOCK_TIMEOUT = 120.0


class WarehouseError(RuntimeError):
    """A warehouse read or write that cannot be done as asked."""


def table_name_for(asset_path: Sequence[str]) -> str:
    """Table name of an asset key: its path joined by `__`."""
    name = "__".join(asset_path)
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"asset key {list(asset_path)} does not make a valid table name")
    return name


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


class Warehouse:
    """DuckDB file at `path` holding one table per asset.

    DuckDB lets one process write a file, or several read it, at a time. `connect` waits for a
    lock held by another process (a notebook's read-only connection, a run's write) with
    exponential backoff up to `lock_timeout` seconds (default `WAREHOUSE_LOCK_TIMEOUT`, 120),
    then fails naming the holder's PID. Readers should open, query and close (`read` does).
    """

    def __init__(self, path: str | Path, lock_timeout: float | None = None):
        self.path = Path(path)
        self.lock_timeout = (
            float(os.environ.get("WAREHOUSE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)) if lock_timeout is None else lock_timeout
        )

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise WarehouseError(f"warehouse {self.path} does not exist yet: run `make run` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open(read_only)
        try:
            yield conn
        finally:
            conn.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file, retrying while another process holds a conflicting lock."""
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as error:
                message = str(error)
                if "lock" not in message.lower():
                    raise
                waited = time.monotonic() - started
                if waited >= self.lock_timeout:
                    holder = _LOCK_HOLDER.search(message)
                    who = f"PID {holder.group(1)}" if holder else "PID unknown"
                    raise WarehouseError(
                        f"warehouse {self.path} is locked by another process ({who}); gave up after {waited:.1f}s "
                        f"(WAREHOUSE_LOCK_TIMEOUT={self.lock_timeout:g}). Close that process's DuckDB connection "
                        f"(readers: open, query, close) and run again. DuckDB said: {message}"
                    ) from error
                time.sleep(min(delay, self.lock_timeout - waited) * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as conn:
            return [r[0] for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'main' order by 1"
            ).fetchall()]

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def write(
        self,
        table: str,
        frame: pl.DataFrame,
        date_range: tuple[date, date] | None = None,
        date_column: str = "date",
        key_filter: tuple[str, Sequence[str]] | None = None,
    ) -> int:
        """Replace rows of `table` with `frame` in one transaction; returns rows written.

        With `date_range=(start, end)` only rows with start <= date < end are replaced and every
        row of `frame` must fall inside the range. Without it the whole table is replaced.
        `key_filter=(column, keys)` (a multi-partition's static dimension) narrows the replaced
        rows to those whose `column` is one of `keys`; every row of `frame` must have one of them.
        """
        if not _IDENTIFIER.match(table):
            raise WarehouseError(f"invalid table name {table!r}")
        if date_range is not None and frame.width:
            if date_column not in frame.columns:
                raise WarehouseError(f"{table}: partitioned output has no `{date_column}` column")
            start, end = date_range
            outside = frame.filter((pl.col(date_column) < start) | (pl.col(date_column) >= end))
            if outside.height:
                sample = outside.get_column(date_column).unique().sort().head(5).to_list()
                raise WarehouseError(
                    f"{table}: {outside.height} rows fall outside the partition range "
                    f"[{start}, {end}); dates such as {sample}. Nothing was written."
                )
        if key_filter is not None and frame.width:
            _check_keys(table, frame, *key_filter)
        with self.connect() as conn:
            conn.execute("begin transaction")
            try:
                self._write_in_transaction(conn, table, frame, date_range, date_column, key_filter)
                conn.execute("commit")
            except Exception:
                conn.execute("rollback")
                raise
        return frame.height

    def _write_in_transaction(self, conn, table, frame, date_range, date_column, key_filter=None) -> None:
        if date_range is not None and key_filter is None:
            _record_write(conn, table, date_range, frame.height)
        exists = _table_exists(conn, table)
        if date_range is None and exists:
            conn.execute(f'drop table "{table}"')
            exists = False
        where, params = _replaced_rows(date_range, date_column, key_filter)
        if frame.width == 0:
            if exists and date_range is not None:
                conn.execute(f'delete from "{table}" where {where}', params)
            return
        arrow_frame = frame.to_arrow()
        conn.register("incoming_frame", arrow_frame)
        try:
            if not exists:
                conn.execute(f'create table "{table}" as select * from incoming_frame limit 0')
            else:
                current = {r[0] for r in conn.execute(f'describe "{table}"').fetchall()}
                for name, dtype, *_ in conn.execute("describe incoming_frame").fetchall():
                    if name not in current:
                        conn.execute(f'alter table "{table}" add column "{name}" {dtype}')
            if date_range is not None:
                conn.execute(f'delete from "{table}" where {where}', params)
            conn.execute(f'insert into "{table}" by name select * from incoming_frame')
        finally:
            conn.unregister("incoming_frame")

    def read(
        self,
        table: str,
        start: date | None = None,
        end: date | None = None,
        columns: Sequence[str] | None = None,
        date_column: str = "date",
        read_only: bool = True,
    ) -> pl.DataFrame:
        """Rows of `table` with start <= date < end (either bound optional), sorted by date."""
        if not _IDENTIFIER.match(table):
            raise WarehouseError(f"invalid table name {table!r}")
        with self.connect(read_only=read_only) as conn:
            return self._read(conn, table, start, end, columns, date_column)

    def _read(self, conn, table, start, end, columns, date_column) -> pl.DataFrame:
        if not _table_exists(conn, table):
            raise WarehouseError(
                f"table `{table}` is not in the warehouse {self.path}: materialize the `{table}` asset first"
            )
        cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        where, params = [], []
        if start is not None:
            where.append(f'"{date_column}" >= ?')
            params.append(start)
        if end is not None:
            where.append(f'"{date_column}" < ?')
            params.append(end)
        table_columns = {r[0] for r in conn.execute(f'describe "{table}"').fetchall()}
        order = f' order by "{date_column}"' if date_column in table_columns else ""
        if "ticker" in table_columns and order:
            order += ', "ticker"'
        sql = f'select {cols} from "{table}"' + (" where " + " and ".join(where) if where else "") + order
        return pl.from_arrow(conn.execute(sql, params).fetch_arrow_table())

    def held_days(self, table: str, days: Sequence[date]) -> set[date] | None:
        """The `days` whose partition of `table` the warehouse holds (a committed write covers
        them), or None when the warehouse keeps no write ledger for `table` (written before the
        ledger existed, or not partitioned): the caller then trusts Dagster alone. A warehouse
        that does not exist holds nothing."""
        if not self.path.exists():
            return set()
        with self.connect(read_only=True) as conn:
            if not _table_exists(conn, "partition_writes", "quant_meta"):
                return None
            if not conn.execute(f"select count(*) from {LEDGER_TABLE} where table_name = ?", [table]).fetchone()[0]:
                return None
            if not _table_exists(conn, table):
                return set()
            rows = conn.execute(
                f"select d from (select unnest(?::date[]) as d) days where exists (select 1 from {LEDGER_TABLE} w "
                "where w.table_name = ? and days.d >= w.start_date and days.d < w.end_date)",
                [list(days), table],
            ).fetchall()
            return {r[0] for r in rows}

    def row_count(self, table: str) -> int:
        with self.connect(read_only=True) as conn:
            return conn.execute(f'select count(*) from "{table}"').fetchone()[0]


def _table_exists(conn: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> bool:
    return bool(conn.execute(
        "select count(*) from information_schema.tables where table_name = ? and table_schema = ?", [table, schema]
    ).fetchone()[0])


def _record_write(conn: duckdb.DuckDBPyConnection, table: str, date_range: tuple[date, date], rows: int) -> None:
    """Ledger the write of [start, end) of `table` (replacing the entries it covers)."""
    conn.execute("create schema if not exists quant_meta")
    conn.execute(
        f"create table if not exists {LEDGER_TABLE} "
        "(table_name varchar, start_date date, end_date date, rows bigint, written_at timestamp)"
    )
    start, end = date_range
    conn.execute(
        f"delete from {LEDGER_TABLE} where table_name = ? and start_date >= ? and end_date <= ?", [table, start, end]
    )
    conn.execute(f"insert into {LEDGER_TABLE} values (?, ?, ?, ?, now())", [table, start, end, rows])


def _replaced_rows(date_range, date_column: str, key_filter) -> tuple[str, list]:
    """SQL condition (and parameters) of the rows a partitioned write replaces."""
    if date_range is None:
        return "", []
    where, params = f'"{date_column}" >= ? and "{date_column}" < ?', list(date_range)
    if key_filter is not None:
        column, keys = key_filter
        where += f' and "{column}" in ({", ".join("?" for _ in keys)})' if keys else " and false"
        params += list(keys)
    return where, params


def _check_keys(table: str, frame: pl.DataFrame, column: str, keys: Sequence[str]) -> None:
    if column not in frame.columns:
        raise WarehouseError(f"{table}: multi-partitioned output has no `{column}` column")
    outside = frame.filter(~pl.col(column).is_in(list(keys)))
    if outside.height:
        raise WarehouseError(
            f"{table}: {outside.height} rows have a `{column}` outside the run's partitions {sorted(keys)}, "
            f"such as {outside[column].unique().sort().head(5).to_list()}. Nothing was written."
        )


def _partition_columns(context: OutputContext) -> tuple[str, tuple[str, list[str]] | None]:
    """The date column of a partitioned output and, for a multi-partition (a time dimension and a
    static one, `partition_expr` = {dimension: column}), the static column with the run's keys."""
    expr = (context.definition_metadata or {}).get("partition_expr", "date")
    if not isinstance(expr, dict):
        return expr, None
    from dagster import MultiPartitionsDefinition, TimeWindowPartitionsDefinition

    partitions_def = context.asset_partitions_def
    if not isinstance(partitions_def, MultiPartitionsDefinition):
        raise WarehouseError(f"{context.asset_key.to_user_string()}: a dict partition_expr needs multi-partitions")
    time_dim = next(d for d in partitions_def.partitions_defs if isinstance(d.partitions_def, TimeWindowPartitionsDefinition))
    static_dim = next(d for d in partitions_def.partitions_defs if d.name != time_dim.name)
    keys = sorted({partitions_def.get_partition_key_from_str(k).keys_by_dimension[static_dim.name]
                   for k in context.asset_partition_keys})
    return expr[time_dim.name], (expr[static_dim.name], keys)


def _partition_date_range(context: InputContext | OutputContext) -> tuple[date, date] | None:
    if not context.has_asset_partitions:
        return None
    window = context.asset_partitions_time_window
    return _as_date(window.start), _as_date(window.end)


class WarehouseIOManager(ConfigurableIOManager):
    """Stores each asset's polars frame in the DuckDB warehouse, one table per asset.

    Time-partitioned assets replace exactly their partition range (`date` column, or the
    column named by the asset's `partition_expr` metadata) in one transaction.
    """

    database: str

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.database)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise WarehouseError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, expected a polars DataFrame")
        table = table_name_for(context.asset_key.path)
        date_column, key_filter = _partition_columns(context)
        date_range = _partition_date_range(context)
        rows = self.warehouse.write(table, obj, date_range, date_column, key_filter)
        metadata: dict = {"table": table, "warehouse": str(self.database), "dagster/row_count": rows}
        if date_range is not None:
            metadata["partition_range"] = f"{date_range[0]} .. {date_range[1]} (end exclusive)"
        if key_filter is not None:
            metadata["partition_keys"] = f"{key_filter[0]} in {sorted(key_filter[1])}"
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pl.DataFrame:
        upstream_key = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        table = table_name_for(upstream_key.path)
        date_column = "date"
        if context.upstream_output is not None:
            date_column = (context.upstream_output.definition_metadata or {}).get("partition_expr", "date")
        date_range = _partition_date_range(context)
        start, end = date_range if date_range else (None, None)
        frame = self.warehouse.read(table, start, end, date_column=date_column, read_only=False)
        return _without_holiday_rows(frame, context, date_column)


def _without_holiday_rows(frame: pl.DataFrame, context: InputContext, date_column: str) -> pl.DataFrame:
    """Rows of a trading-day partitioned input dated on a non-session (holiday partitions written
    before the exchange calendar, by a warehouse made with weekday partitions) are ignored, with
    a log line that counts them. Only inputs whose partitions have calendar `exclusions` qualify."""
    partitions_def = context.asset_partitions_def if context.has_asset_partitions else None
    if not getattr(partitions_def, "exclusions", None) or date_column not in frame.columns or frame.is_empty():
        return frame
    from quant_lib.data.calendar import is_trading_day

    keep = is_trading_day(frame.get_column(date_column).cast(pl.Date))
    dropped = frame.height - int(keep.sum())
    if dropped:
        context.log.warning(f"ignored {dropped} rows dated on exchange holidays (made before the exchange calendar)")
        return frame.filter(keep)
    return frame


class WarehouseResource(ConfigurableResource):
    """Direct access to the warehouse for assets and sensors that query it."""

    database: str

    def get(self) -> Warehouse:
        return Warehouse(self.database)

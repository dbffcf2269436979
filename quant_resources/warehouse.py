"""The DuckDB warehouse: one table per asset, long format, partitions replaced atomically.

`Warehouse` is the plain reader/writer (notebooks, scripts, the API); `WarehouseIOManager` is
the Dagster I/O manager every asset uses. Writing a partition range is one transaction:
delete the range, insert the new rows, commit; a failure rolls back and the previous data stays.
DuckDB allows one writer process at a time: Dagster's `duckdb_warehouse` pool (limit 1,
`dagster.yaml`) serializes every asset step that touches the file, across runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

WAREHOUSE_POOL = "duckdb_warehouse"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    """DuckDB file at `path` holding one table per asset."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise WarehouseError(f"warehouse {self.path} does not exist yet: run `make run` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect(str(self.path), read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as conn:
            return [r[0] for r in conn.execute("select table_name from information_schema.tables order by 1").fetchall()]

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def write(
        self,
        table: str,
        frame: pl.DataFrame,
        date_range: tuple[date, date] | None = None,
        date_column: str = "date",
    ) -> int:
        """Replace rows of `table` with `frame` in one transaction; returns rows written.

        With `date_range=(start, end)` only rows with start <= date < end are replaced and every
        row of `frame` must fall inside the range. Without it the whole table is replaced.
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
        with self.connect() as conn:
            conn.execute("begin transaction")
            try:
                self._write_in_transaction(conn, table, frame, date_range, date_column)
                conn.execute("commit")
            except Exception:
                conn.execute("rollback")
                raise
        return frame.height

    def _write_in_transaction(self, conn, table, frame, date_range, date_column) -> None:
        exists = conn.execute(
            "select count(*) from information_schema.tables where table_name = ?", [table]
        ).fetchone()[0]
        if date_range is None and exists:
            conn.execute(f'drop table "{table}"')
            exists = False
        if frame.width == 0:
            if exists and date_range is not None:
                conn.execute(f'delete from "{table}" where "{date_column}" >= ? and "{date_column}" < ?', list(date_range))
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
                conn.execute(
                    f'delete from "{table}" where "{date_column}" >= ? and "{date_column}" < ?',
                    list(date_range),
                )
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
        exists = conn.execute(
            "select count(*) from information_schema.tables where table_name = ?", [table]
        ).fetchone()[0]
        if not exists:
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

    def row_count(self, table: str) -> int:
        with self.connect(read_only=True) as conn:
            return conn.execute(f'select count(*) from "{table}"').fetchone()[0]


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
        date_column = (context.definition_metadata or {}).get("partition_expr", "date")
        date_range = _partition_date_range(context)
        rows = self.warehouse.write(table, obj, date_range, date_column)
        metadata: dict = {"table": table, "warehouse": str(self.database), "dagster/row_count": rows}
        if date_range is not None:
            metadata["partition_range"] = f"{date_range[0]} .. {date_range[1]} (end exclusive)"
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

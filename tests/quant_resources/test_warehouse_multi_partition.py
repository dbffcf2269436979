"""A week x model multi-partition write replaces exactly its (week, model) rows."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_resources.warehouse import Warehouse, WarehouseError

WEEK, NEXT = date(2024, 6, 22), date(2024, 6, 29)


def _rows(week: date, models: list[str], version: int) -> pl.DataFrame:
    return pl.DataFrame({"week": [week] * len(models), "model": models, "version": [version] * len(models)})


def test_rerun_of_one_model_replaces_only_its_rows(tmp_path) -> None:
    warehouse = Warehouse(tmp_path / "quant.duckdb")
    warehouse.write("model_checkpoints", pl.concat([_rows(WEEK, ["lstm", "ppo"], 1), _rows(NEXT, ["lstm"], 1)]))
    warehouse.write("model_checkpoints", _rows(WEEK, ["lstm"], 2), (WEEK, NEXT), "week", ("model", ["lstm"]))
    table = warehouse.read("model_checkpoints", date_column="week").sort("week", "model")
    assert table.rows() == [(WEEK, "lstm", 2), (WEEK, "ppo", 1), (NEXT, "lstm", 1)]
    warehouse.write("model_checkpoints", pl.DataFrame(), (WEEK, NEXT), "week", ("model", ["ppo"]))  # an empty run
    assert warehouse.read("model_checkpoints", date_column="week").height == 2


def test_rows_outside_the_runs_models_are_refused_and_nothing_written(tmp_path) -> None:
    warehouse = Warehouse(tmp_path / "quant.duckdb")
    warehouse.write("model_checkpoints", _rows(WEEK, ["lstm", "ppo"], 1))
    with pytest.raises(WarehouseError, match=r"1 rows have a `model` outside the run's partitions \['lstm'\]"):
        warehouse.write("model_checkpoints", _rows(WEEK, ["lstm", "ppo"], 2), (WEEK, NEXT), "week", ("model", ["lstm"]))
    assert warehouse.read("model_checkpoints", date_column="week")["version"].to_list() == [1, 1]

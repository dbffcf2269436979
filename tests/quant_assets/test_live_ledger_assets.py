"""live_fills / live_equity: the ledger segments of the live loop ingested by the ledger sensor's job."""

from __future__ import annotations

from dagster import DagsterInstance, SkipReason, build_sensor_context, materialize

from quant_assets.execution import live_equity, live_fills, live_ledger_sensor
from quant_resources.ledger import FileLedgerSink
from quant_resources.settings import get_settings
from quant_resources.warehouse import Warehouse, WarehouseIOManager


def _fill(coid: str, qty: float) -> dict:
    return {"event": "fill", "client_order_id": coid, "symbol": "AAPL", "side": "buy", "qty": qty, "price": 100.0,
            "commission": 0.01, "order_id": f"paper-{coid}", "timestamp": "2025-01-02T15:00:00+00:00"}


def test_sensor_requests_ingestion_once_per_change_and_tables_deduplicate(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        instance = DagsterInstance.ephemeral()
        assert isinstance(live_ledger_sensor(build_sensor_context(instance=instance)), SkipReason)
        sink = FileLedgerSink(tmp_path / "ledger", "live")
        sink.write_segment(10, [_fill("a", 1.0), {"event": "equity", "bar_counter": 10, "equity": 99.0, "cash": 1.0,
                                                  "timestamp": "t10"}])
        sink.write_segment(20, [_fill("b", 2.0), {"event": "equity", "bar_counter": 20, "equity": 98.0, "cash": 1.0,
                                                  "timestamp": "t20"}])
        context = build_sensor_context(instance=instance)
        request = live_ledger_sensor(context)
        assert request.run_key.startswith("ledger-")
        again = build_sensor_context(instance=instance, cursor=context.cursor)
        assert isinstance(live_ledger_sensor(again), SkipReason)
        sink.write_segment(20, [_fill("b", 2.0)])  # a replay rewrites the same segment
        database = str(tmp_path / "quant.duckdb")
        result = materialize([live_fills, live_equity], resources={"io_manager": WarehouseIOManager(database=database)})
        assert result.success
        warehouse = Warehouse(database)
        fills = warehouse.read("live_fills")
        assert sorted(fills["client_order_id"].to_list()) == ["a", "b"]
        assert warehouse.read("live_equity")["bar_counter"].to_list() == [10]
    finally:
        get_settings.cache_clear()

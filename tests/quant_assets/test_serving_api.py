"""The serving snapshot published by `serving_snapshot` over the daily graph, and every API
endpoint answering from it (known values from the warehouse, 404/422/503 cases, OpenAPI)."""

from __future__ import annotations

import math

import duckdb
import pytest
from fastapi.testclient import TestClient

from quant_api.app import create_app
from quant_resources.settings import PlatformSettings

API = "/api/v1"


@pytest.fixture(scope="module")
def client(served_snapshot, tmp_path_factory):
    settings = PlatformSettings(warehouse_dir=tmp_path_factory.mktemp("api_wh"), serving_dir=served_snapshot.serving_dir)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def warehouse(served_snapshot):
    conn = duckdb.connect(str(served_snapshot.warehouse_path), read_only=True)
    yield conn
    conn.close()


def test_serving_snapshot_asset_publishes_every_served_table(served_snapshot):
    manifest = served_snapshot.manifest
    assert served_snapshot.result.success
    for table in ("rankings", "regime", "portfolio_targets", "risk_report", "trade_list", "factor_values",
                  "prices", "backtests", "backtest_equity", "backtest_config", "tearsheets"):
        assert manifest.tables.get(table, 0) > 0, table
    assert str(manifest.as_of) == "2024-06-28"
    assert manifest.run_id == served_snapshot.result.run_id


def _get(client, path, status=200, **params):
    response = client.get(API + path, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    if status == 200 and path != "/health":
        assert body["snapshot_id"] and body["as_of"] == "2024-06-28"
    return body


def test_rankings_match_the_warehouse(client, warehouse):
    body = _get(client, "/quant/rankings", limit=5)
    expected = warehouse.execute(
        "select ticker, score from rankings where date = '2024-06-28' order by rank limit 5"
    ).fetchall()
    assert [(r["ticker"], r["score"]) for r in body["rankings"]] == [(t, pytest.approx(s)) for t, s in expected]
    first = body["rankings"][0]
    assert first["rank"] == 1 and first["model"] == body["model"] and first["date"] == "2024-06-28"
    assert set(first) >= {"vsm", "bab", "qmj", "upside", "pead", "sentiment", "regime"}
    assert _get(client, "/quant/rankings", limit=1000)["count"] == warehouse.execute(
        "select count(*) from rankings where date = '2024-06-28'").fetchone()[0]


def test_portfolio_weights_and_sectors(client, warehouse):
    listing = _get(client, "/quant/portfolios")["portfolios"]
    model = listing[0]["model"]
    body = _get(client, "/quant/portfolio", model=model)
    weights = dict(warehouse.execute(
        "select ticker, weight from portfolio_targets where date = '2024-06-28' and model_name = ?", [model]).fetchall())
    assert {p["ticker"]: p["weight"] for p in body["positions"]} == pytest.approx(weights)
    assert sum(s["weight"] for s in body["sectors"]) == pytest.approx(body["gross_weight"])
    assert listing[0]["positions"] == len(weights)


def test_risk_metrics_scale_with_portfolio_value_and_reprice_the_hedge(client):
    base = _get(client, "/quant/risk/metrics")
    double = _get(client, "/quant/risk/metrics", portfolio_value=2_000_000)
    assert double["var"]["portfolio_var"] == pytest.approx(2 * base["var"]["portfolio_var"])
    assert sum(base["var"]["component_var"]) == pytest.approx(base["var"]["portfolio_var"], rel=1e-6)
    assert len(base["var"]["tickers"]) == len(base["var"]["weights"]) == len(base["var"]["component_var"])
    calm, wild = (_get(client, "/quant/risk/metrics", volatility=v)["hedge"] for v in (0.1, 0.6))
    assert wild["put_price"] > calm["put_price"] and wild["strike"] == pytest.approx(calm["strike"])


def test_vwap_schedule_reuses_the_execution_library(client):
    body = _get(client, "/quant/execution/vwap", shares=-1001, volume=100_000, volatility=0.02)
    assert sum(s["shares"] for s in body["schedule"]) == -1001
    assert body["schedule"][0]["slice_start"] == "09:30" and len(body["schedule"]) == 13
    assert body["expected_impact_bps"] == pytest.approx(0.02 * math.sqrt(1001 / 100_000) * 1e4)


def test_trades_summary_and_dashboard(client, warehouse):
    trades = _get(client, "/quant/weekly/trades")
    assert trades["count"] == warehouse.execute("select count(*) from trade_list where date = (select max(date) from trade_list)").fetchone()[0] > 0
    summary = _get(client, "/quant/dashboard/summary")
    regime = warehouse.execute("select regime, confidence from regime where date = '2024-06-28'").fetchone()
    assert summary["regime"]["label"] == regime[0]
    assert summary["regime"]["confidence_score"] == pytest.approx(regime[1])
    assert summary["regime"]["adjusted_target_vol"] == pytest.approx(0.15 * summary["regime"]["confidence_multiplier"])
    assert set(summary["attribution"]) == {"value", "momentum", "quality", "low_risk", "sentiment"}
    assert [t["ticker"] for t in summary["trades"]] == [t["ticker"] for t in trades["trades"]]


def test_backtest_run_serves_the_stored_results(client):
    body = _get(client, "/quant/backtest/run")
    assert {s["strategy"] for s in body["strategies"]} == {"ranking_top_n", "benchmark", "equal_weight"}
    assert body["top_n"] == 5 and body["tearsheet_url"] == "/dashboard/tearsheet"
    points = [p for p in body["equity"] if p["strategy"] == "benchmark"]
    assert points[0]["equity"] == pytest.approx(1e6) and max(p["drawdown"] for p in points) <= 0
    only = _get(client, "/quant/backtest/run", benchmarks="benchmark", start_year=2024, end_year=2024)
    assert {s["strategy"] for s in only["strategies"]} == {"ranking_top_n", "benchmark"}
    assert _get(client, "/quant/backtest/run", top_n=7, status=404)["detail"].startswith("no stored backtest with top_n=7")
    assert "unknown strategies" in _get(client, "/quant/backtest/run", benchmarks="nope", status=404)["detail"]
    assert "tear sheet" in client.get("/dashboard/tearsheet").text


def test_optional_tables_and_valuation(client, warehouse):
    signals = _get(client, "/quant/ml/signals")
    assert signals["meta_labeler"] == {"available": False, "rows": []}
    live = _get(client, "/quant/live/status")
    assert live["available"] is False and live["equity"] == [] and live["positions"]
    ticker, upside = warehouse.execute(
        "select ticker, upside from factor_values where date = '2024-06-28' and upside is not null limit 1").fetchone()
    body = _get(client, f"/quant/valuation/{ticker.lower()}")
    assert body["ticker"] == ticker and body["upside_dcf"] == pytest.approx(upside) and body["price"] > 0
    assert "shares_outstanding" in body["inputs"]


@pytest.mark.parametrize(
    "path,params,parameter",
    [
        ("/quant/rankings", {"limit": 0}, "limit"),
        ("/quant/rankings", {"limit": "ten"}, "limit"),
        ("/quant/rankings", {"model": "x'; drop table rankings; --"}, "model"),
        ("/quant/risk/metrics", {"portfolio_value": -5}, "portfolio_value"),
        ("/quant/risk/metrics", {"volatility": 0.001}, "volatility"),
        ("/quant/execution/vwap", {"volume": 10}, "shares"),
        ("/quant/execution/vwap", {"shares": 10, "volume": 0}, "volume"),
        ("/quant/backtest/run", {"start_year": 1800}, "start_year"),
        ("/quant/valuation/%3Bdrop", {}, "ticker"),
    ],
)
def test_bad_input_is_a_422_naming_the_parameter(client, path, params, parameter):
    body = _get(client, path, status=422, **params)
    assert parameter in [entry["loc"][-1] for entry in body["detail"]]


def test_unknown_things_are_404(client):
    assert "unknown model" in _get(client, "/quant/rankings", model="ranking_v9", status=404)["detail"]
    assert "unknown model" in _get(client, "/quant/portfolio", model="nope", status=404)["detail"]
    assert "unknown ticker" in _get(client, "/quant/valuation/ZZZZ", status=404)["detail"]


def test_health_probes(client):
    assert _get(client, "/health")["status"] == "healthy"
    ready = _get(client, "/ready")
    assert ready["status"] == "ready" and ready["checks"]["snapshot"] == "ok"
    deep = client.get(API + "/health/deep").json()
    assert deep["checks"]["snapshot"]["status"] == "ok"
    assert set(deep["checks"]) == {
        "snapshot", "warehouse_writer_lock", "dagster_webserver", "mlflow_store", "disk_space", "data_freshness",
        "circuit_breakers",
    }
    assert deep["checks"]["dagster_webserver"]["status"] == "not_configured"


def test_openapi_documents_every_endpoint(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    for path in ("/health", "/ready", "/health/deep", "/quant/rankings", "/quant/portfolio", "/quant/portfolios",
                 "/quant/risk/metrics", "/quant/execution/vwap", "/quant/weekly/trades", "/quant/dashboard/summary",
                 "/quant/backtest/run", "/quant/backtest", "/quant/ml/signals", "/quant/valuation/{ticker}",
                 "/quant/live/status"):
        assert API + path in paths
    assert client.get("/docs").status_code == 200


def test_weekly_serving_snapshot_republishes_after_the_weekly_job(served_snapshot, daily_graph, tmp_path):
    from dagster import materialize

    from quant_assets.serving import weekly_serving_snapshot
    from quant_resources.experiments import ExperimentStoreResource
    from quant_resources.snapshot_publisher import SnapshotPublisherResource
    from quant_resources.snapshots import read_pointer

    resources = {
        **daily_graph.resources,
        "experiments": ExperimentStoreResource(root_dir=str(served_snapshot.serving_dir.parent / "mlruns"), enable_mlflow=False),
        "snapshots": SnapshotPublisherResource(serving_dir=str(tmp_path)),
    }
    result = materialize([weekly_serving_snapshot], resources=resources, partition_key="2024-06-22", instance=daily_graph.instance)
    manifest = read_pointer(tmp_path)
    assert result.success and manifest.run_id == result.run_id
    assert manifest.tables["backtest_equity"] == served_snapshot.manifest.tables["backtest_equity"]
    assert manifest.tables["rankings"] == served_snapshot.manifest.tables["rankings"]

"""API behaviour that needs no simulated market: no snapshot yet, snapshot swaps, the backtest
launch (501 / 202 / 502), CORS, the writer-lock probe, secrets never echoed."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import polars as pl
import pytest
from fastapi.testclient import TestClient

from quant_api import routes
from quant_api.app import create_app
from quant_api.health import warehouse_lock_holder
from quant_resources.settings import PlatformSettings
from quant_resources.snapshots import SnapshotPublisher

SECRET = "sk-test-do-not-echo-7f3a"


def _settings(tmp_path, **extra) -> PlatformSettings:
    return PlatformSettings(warehouse_dir=tmp_path / "wh", serving_dir=tmp_path / "serving", **extra)


def _publish(tmp_path, run_id: str, score: float) -> str:
    rankings = pl.DataFrame({
        "date": [date(2024, 6, 28)] * 2, "ticker": ["AAA", "BBB"], "score": [score, -score], "rank": [1, 2],
        "regime": ["Bull"] * 2, "model_name": ["ranking_v3"] * 2, "vsm": [1.0, float("nan")],
    })
    return SnapshotPublisher(tmp_path / "serving").publish(run_id, frames={"rankings": rankings}).snapshot_id


def test_without_a_snapshot_probes_say_why_and_reads_are_503(tmp_path):
    with TestClient(create_app(_settings(tmp_path))) as client:
        assert client.get("/api/v1/health").json()["status"] == "healthy"
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503 and "make run" in ready.json()["reason"]
        assert client.get("/api/v1/health/deep").json()["status"] == "unhealthy"
        rankings = client.get("/api/v1/quant/rankings")
        assert rankings.status_code == 503 and "no snapshot published" in rankings.json()["detail"]


def test_a_new_snapshot_is_served_without_restart_and_nan_becomes_null(tmp_path):
    first = _publish(tmp_path, "run-a", 1.0)
    with TestClient(create_app(_settings(tmp_path))) as client:
        body = client.get("/api/v1/quant/rankings").json()
        assert body["snapshot_id"] == first and body["rankings"][0]["score"] == 1.0
        assert body["rankings"][1]["vsm"] is None and body["rankings"][0]["bab"] is None
        second = _publish(tmp_path, "run-b", 2.0)
        body = client.get("/api/v1/quant/rankings").json()
        assert body["snapshot_id"] == second and body["rankings"][0]["score"] == 2.0
        missing = client.get("/api/v1/quant/portfolio")
        assert missing.status_code == 404 and "portfolio_targets" in missing.json()["detail"]


def test_backtest_launch_501_without_webserver_202_with_it_502_on_failure(tmp_path, monkeypatch):
    body = {"start_year": 2020, "end_year": 2023, "top_n": 10}
    with TestClient(create_app(_settings(tmp_path))) as client:
        response = client.post("/api/v1/quant/backtest", json=body)
        assert response.status_code == 501 and "DAGSTER_WEBSERVER_URL" in response.json()["detail"]
    submitted = {}

    def fake_submit(url, job, partition, run_config):
        submitted.update(url=url, job=job, partition=partition, run_config=run_config)
        return "run-123"

    monkeypatch.setattr(routes, "submit_dagster_job", fake_submit)
    with TestClient(create_app(_settings(tmp_path, dagster_webserver_url="http://127.0.0.1:3999"))) as client:
        response = client.post("/api/v1/quant/backtest", json=body)
        assert response.status_code == 202 and response.json()["run_id"] == "run-123"
        assert submitted["job"] == "weekly_research_job"
        assert submitted["run_config"] == {"ops": {"backtests": {"config": {"history_years": 4.0, "top_n": 10}}}}
        assert date.fromisoformat(submitted["partition"]).weekday() == 5
        bad = client.post("/api/v1/quant/backtest", json={"start_year": 2023, "end_year": 2020})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "start_year"]
        monkeypatch.setattr(routes, "submit_dagster_job", lambda *a: (_ for _ in ()).throw(ConnectionError(SECRET)))
        failed = client.post("/api/v1/quant/backtest", json=body)
        assert failed.status_code == 502 and SECRET not in failed.text


def test_latest_complete_week_is_the_saturday_before_last():
    assert routes.latest_complete_week(date(2024, 7, 1)) == date(2024, 6, 22)  # Monday
    assert routes.latest_complete_week(date(2024, 6, 29)) == date(2024, 6, 22)  # Saturday
    assert routes.latest_complete_week(date(2024, 6, 28)) == date(2024, 6, 15)  # Friday: week not over


def test_cors_is_off_unless_configured(tmp_path):
    _publish(tmp_path, "run", 1.0)
    origin = {"Origin": "http://evil.example"}
    with TestClient(create_app(_settings(tmp_path))) as client:
        assert "access-control-allow-origin" not in client.get("/api/v1/health", headers=origin).headers
    allowed = {"Origin": "http://localhost:5173"}
    with TestClient(create_app(_settings(tmp_path, api_cors_origins="http://localhost:5173"))) as client:
        assert client.get("/api/v1/health", headers=allowed).headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "access-control-allow-origin" not in client.get("/api/v1/health", headers=origin).headers


def test_secrets_in_the_environment_never_reach_a_response(tmp_path, monkeypatch):
    _publish(tmp_path, "run", 1.0)
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, SECRET)
    with TestClient(create_app(_settings(tmp_path))) as client:
        for path in client.get("/openapi.json").json()["paths"]:
            if "{" not in path:
                assert SECRET not in client.get(path).text, path


def test_writer_lock_probe_names_the_writer_without_taking_the_lock(tmp_path):
    path = tmp_path / "quant.duckdb"
    script = f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); print('open', flush=True); sys.stdin.read()"
    writer = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        assert warehouse_lock_holder(path) == writer.pid
    finally:
        writer.communicate("", timeout=30)
    assert warehouse_lock_holder(path) is None


def test_responses_are_cached_per_snapshot_and_a_publish_invalidates(tmp_path):
    first = _publish(tmp_path, "run-a", 1.0)
    app = create_app(_settings(tmp_path))
    with TestClient(app) as client:
        bodies = [client.get("/api/v1/quant/rankings?limit=1").json() for _ in range(3)]
        assert bodies[0] == bodies[2] and bodies[0]["snapshot_id"] == first
        cache = app.middleware_stack
        while not hasattr(cache, "hits"):
            cache = cache.app
        assert cache.hits == 2
        assert client.get("/api/v1/quant/rankings?limit=0").status_code == 422  # errors are not cached
        assert client.get("/api/v1/quant/rankings?limit=0").status_code == 422
        second = _publish(tmp_path, "run-b", 3.0)
        fresh = client.get("/api/v1/quant/rankings?limit=1").json()
        assert fresh["snapshot_id"] == second and fresh["rankings"][0]["score"] == 3.0


def test_the_api_imports_neither_the_asset_graph_nor_dagster_nor_heavy_libraries():
    """Layering (quant_api depends on quant_lib and quant_resources only) and a fast start."""
    heavy = ("quant_assets", "dagster", "torch", "sklearn", "scipy", "plotly", "mlflow", "numba")
    script = (
        "import sys, quant_api.app, quant_api.server; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_optional_tables_of_any_shape_are_served_as_json(tmp_path):
    """Tables of the learning and trading layers reach /ml/signals and /live/status as they are,
    whatever their column types (blobs, lists, durations, NaN)."""
    from datetime import datetime, timedelta, timezone

    checkpoints = pl.DataFrame({
        "week": [date(2024, 6, 22)], "model": ["itransformer"], "version": [3], "val_loss": [float("nan")],
        "state": [b"\x00\x01\x02"], "features": [["rsi", "macd"]], "train_time": [timedelta(seconds=90)],
    })
    equity = pl.DataFrame({"timestamp": [datetime(2024, 6, 28, 20, tzinfo=timezone.utc)], "equity": [1_000_500.0]})
    champions = pl.DataFrame({"week": [date(2024, 6, 22)], "champion_version": [3], "promoted": [True]})
    SnapshotPublisher(tmp_path / "serving").publish(
        "run", frames={"model_checkpoints": checkpoints, "live_equity": equity, "meta_champion": champions}
    )
    with TestClient(create_app(_settings(tmp_path))) as client:
        signals = client.get("/api/v1/quant/ml/signals")
        assert signals.status_code == 200, signals.text
        row = signals.json()["checkpoints"]["rows"][0]
        assert row["state"] == "<3 bytes>" and row["val_loss"] is None and row["features"] == ["rsi", "macd"]
        assert row["train_time"] == 90.0
        assert signals.json()["champions"]["rows"][0]["champion_version"] == 3
        assert signals.json()["meta_labeler"] == {"available": False, "rows": []}
        live = client.get("/api/v1/quant/live/status").json()
        assert live["available"] is True and live["equity"][0]["equity"] == 1_000_500.0

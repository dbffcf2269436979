"""The dashboard: served locally (page + plotly.js from the plotly package, no network), every
endpoint it reads answers with data (plain HTTP, always), and in headless Chromium every panel
renders (skipped only where no chromium binary is installed)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from quant_api.app import create_app
from quant_resources.settings import PlatformSettings

PANELS = ["regime", "risk", "rankings", "sectors", "trades", "backtest", "live"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def app(served_snapshot, tmp_path_factory):
    return create_app(PlatformSettings(warehouse_dir=tmp_path_factory.mktemp("dash_wh"), serving_dir=served_snapshot.serving_dir))


def test_page_and_plotly_are_served_locally_and_its_data_answers(app):
    with TestClient(app) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert all(f'data-panel="{p}"' in html for p in PANELS)
        assert re.findall(r'<script[^>]+src="([^"]+)"', html) == ["/dashboard/plotly.min.js"]
        assert "http://" not in html and "https://" not in html
        plotly_js = client.get("/dashboard/plotly.min.js")
        assert plotly_js.status_code == 200 and len(plotly_js.content) > 1_000_000 and b"plotly" in plotly_js.content[:2000]
        reads = re.findall(r'get\("([^"]+)"\)', html)
        assert len(reads) == 7
        for path in reads:
            response = client.get("/api/v1" + path)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["snapshot_id"]
        assert client.get("/dashboard/tearsheet").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(app):
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=20000", "--window-size=1400,2000", *args],
        capture_output=True, text=True, timeout=90,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium)")
def test_every_panel_renders_in_headless_chromium(live_server, tmp_path):
    dom = _chromium("--dump-dom", live_server + "/dashboard", tmp_path=tmp_path).stdout
    assert 'data-loaded="true"' in dom, dom[-2000:]
    states = dict(re.findall(r'data-panel="(\w+)" data-state="(\w+)"', dom))
    assert states == {**{p: "rendered" for p in PANELS}, "live": "empty"}
    assert dom.count('class="plot-container plotly"') == 5
    assert "AGGRESSIVE" in dom or "DEFENSIVE" in dom or "NEUTRAL" in dom
    shot = tmp_path / "dashboard.png"
    _chromium(f"--screenshot={shot}", live_server + "/dashboard", tmp_path=tmp_path)
    assert shot.stat().st_size > 50_000

"""The dashboard: one static HTML page (`static/dashboard.html`) that reads the API, and the
plotly.js shipped inside the plotly Python package (served locally: no network, no Node)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from quant_api.queries import tearsheet_html
from quant_resources.snapshots import SnapshotError

router = APIRouter(tags=["dashboard"], include_in_schema=False)
PAGE = Path(__file__).resolve().parent / "static" / "dashboard.html"


@lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    """`plotly/package_data/plotly.min.js` of the installed plotly package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the plotly package")
    return path


@router.get("/dashboard")
def dashboard_page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


@router.get("/dashboard/plotly.min.js")
def plotly_js() -> FileResponse:
    try:
        path = plotly_js_path()
    except FileNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return FileResponse(path, media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/dashboard/tearsheet")
def tearsheet(request: Request) -> HTMLResponse:
    try:
        snapshot = request.app.state.reader.current()
    except SnapshotError as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    return HTMLResponse(tearsheet_html(snapshot))

"""The FastAPI application: `create_app()` wires the routers, the snapshot reader (lifespan),
error handlers, optional CORS and the dashboard."""

from __future__ import annotations

import importlib
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse

from quant_api import dashboard, health, routes
from quant_api.cache import SnapshotResponseCache
from quant_api.queries import NotFound
from quant_resources.settings import PlatformSettings, get_settings
from quant_resources.snapshots import SnapshotError, SnapshotReader

API_PREFIX = "/api/v1"
logger = logging.getLogger("quant_api")


def create_app(settings: PlatformSettings | None = None, serving_dir: str | Path | None = None) -> FastAPI:
    """The API over the snapshots in `serving_dir` (default: the settings' `serving_path`)."""
    settings = settings or get_settings()
    folder = Path(serving_dir) if serving_dir is not None else settings.serving_path

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.reader = SnapshotReader(folder)
        app.state.settings = settings
        try:
            current = app.state.reader.current()
            logger.info("serving snapshot %s (as of %s) from %s", current.snapshot_id, current.manifest.as_of, folder)
        except SnapshotError as exc:
            logger.warning("no snapshot yet (%s); /ready answers 503 until one is published", exc)
        # The hedge repricer's import (scipy, sklearn through quant_lib.risk) warms up off the request path.
        threading.Thread(target=importlib.import_module, args=("quant_lib.risk.hedging",), daemon=True).start()
        yield
        app.state.reader.close()

    app = FastAPIOffline(
        title="quant-platform API",
        version="1.0.0",
        description="Read-only API over the published serving snapshots (rankings, portfolios, risk, trades, backtests).",
        lifespan=lifespan,
    )
    app.state.reader = SnapshotReader(folder)
    app.state.settings = settings
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(routes.router, prefix=API_PREFIX)
    app.include_router(dashboard.router)
    app.add_middleware(SnapshotResponseCache, reader_of=lambda scope: scope["app"].state.reader)
    if settings.api_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.api_cors_origins, allow_methods=["GET", "POST"])

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(SnapshotError)
    async def no_snapshot(request: Request, exc: SnapshotError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app

"""Start the API with uvicorn: `serve(host, port)` (what `make serve`, `python -m quant_api` and
the `quant serve` command call). Binds to 127.0.0.1:8000 unless `API_HOST` / `API_PORT` say
otherwise."""

from __future__ import annotations

import argparse
import logging

from quant_resources.settings import get_settings

LOG_FORMAT = "%(asctime)s | %(name)s | %(levelname)s | %(message)s"


def serve(host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    """Serve the API until interrupted (blocking)."""
    import uvicorn

    from quant_api.app import create_app

    settings = get_settings()
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    host = host or settings.api_host
    port = port or settings.api_port
    logging.getLogger("quant_api").info(
        "quant-platform API on http://%s:%s (docs /docs, dashboard /dashboard), snapshots in %s",
        host, port, settings.serving_path,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the read-only quant-platform API and dashboard.")
    parser.add_argument("--host", default=None, help="bind address (default: API_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: API_PORT or 8000)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.log_level)
    return 0

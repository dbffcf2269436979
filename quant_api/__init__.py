"""Read-only REST API and dashboard over the published serving snapshots.

Its own top-level package: it depends on `quant_lib` and `quant_resources` only (never on
`quant_assets`, so serving never imports Dagster's asset graph), and it never opens the live
warehouse: `quant_resources.snapshots.SnapshotReader` resolves the published snapshot on each
request. `quant_api.server.serve(host, port)` starts it (uvicorn); `python -m quant_api` and
`make serve` call that.
"""

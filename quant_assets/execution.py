"""The `execution` group's live half: the live loop's ledger files ingested into the warehouse.

`quant live` (SelfTrainer) never opens DuckDB: it writes ledger segments under
`warehouse/ledger/<run>/`. `live_ledger_sensor` notices new or rewritten segments and runs
`live_ledger_job`, which re-reads every segment (deduplicated by client order id / bar) into
`live_fills` and `live_equity`: re-running it gives the same tables.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    sensor,
)

from quant_resources.ledger import read_ledger
from quant_resources.settings import get_settings

EXECUTION = {"group_name": "execution"}


def ledger_root() -> Path:
    return Path(get_settings().warehouse_dir) / "ledger"


@asset(**EXECUTION, description="Fills of the live loop (paper or Alpaca) from its ledger files, one row per fill (per fill increment on Alpaca).")
def live_fills():
    fills, _ = read_ledger(ledger_root())
    return Output(fills, metadata={"fills": fills.height, "runs": fills["run"].n_unique()})


@asset(**EXECUTION, description="Equity of the live loop per bar from its ledger files.")
def live_equity():
    _, equity = read_ledger(ledger_root())
    last = float(equity["equity"][-1]) if equity.height else 0.0
    return Output(equity, metadata={"bars": equity.height, "latest_equity": last})


live_ledger_job = define_asset_job(
    "live_ledger_job", selection=AssetSelection.assets(live_fills, live_equity),
    description="Ingest the live loop's ledger files into live_fills / live_equity.",
)


def ledger_fingerprint(root: Path) -> str:
    """Names, sizes and modification times of every segment: changes when one is written."""
    if not root.exists():
        return ""
    parts = sorted(f"{p.relative_to(root)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in root.glob("*/*.jsonl"))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else ""


@sensor(
    job=live_ledger_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every minute: new or rewritten live-loop ledger segments request an ingestion run.",
)
def live_ledger_sensor(context: SensorEvaluationContext):
    fingerprint = ledger_fingerprint(ledger_root())
    if not fingerprint:
        return SkipReason("no ledger segments yet")
    if fingerprint == context.cursor:
        return SkipReason("ledger unchanged")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=f"ledger-{fingerprint}", tags={"quant/trigger": "live_ledger"})

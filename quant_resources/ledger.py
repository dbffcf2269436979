"""The live loop's ledger on disk: one JSON-lines file per checkpoint segment, written atomically.

Layout: ``<root>/<run>/<segment:012d>.jsonl`` (``root`` defaults to ``warehouse/ledger``). A
segment holds the order, status, fill and equity events recorded since the previous checkpoint.
Writing a segment again replaces it, and ``discard_after`` removes segments a restart will replay,
so the files never hold an event twice. ``read_ledger`` gives the fills and equity of every run,
deduplicated by (run, client_order_id, fill_id) / (run, bar_counter), for the ``live_fills`` /
``live_equity`` sensor. The live process never opens DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from quant_resources.atomic import atomic_write_bytes

SEGMENT_SUFFIX = ".jsonl"

LIVE_FILLS_SCHEMA = {
    "run": pl.String, "timestamp": pl.String, "symbol": pl.String, "side": pl.String, "qty": pl.Float64,
    "price": pl.Float64, "commission": pl.Float64, "client_order_id": pl.String, "order_id": pl.String,
    "segment": pl.Int64, "cum_qty": pl.Float64, "fill_id": pl.String,
}
"""One row per fill; a broker that fills in parts gives one row per increment (``fill_id`` =
"order id:cumulative qty", ``cum_qty`` the order's filled quantity after it; null on paper)."""
LIVE_EQUITY_SCHEMA = {"run": pl.String, "timestamp": pl.String, "bar_counter": pl.Int64, "equity": pl.Float64,
                      "cash": pl.Float64, "segment": pl.Int64}


class FileLedgerSink:
    """``quant_lib.live.LedgerSink`` on files (see module doc)."""

    def __init__(self, root: str | Path, run: str = "live") -> None:
        if not run or "/" in run or run.startswith("."):
            raise ValueError(f"run name must be a plain folder name, got {run!r}")
        self.folder = Path(root) / run

    def segment_path(self, segment: int) -> Path:
        return self.folder / f"{segment:012d}{SEGMENT_SUFFIX}"

    def write_segment(self, segment: int, events: list[dict[str, Any]]) -> Path:
        lines = "".join(json.dumps(event, default=str, sort_keys=True) + "\n" for event in events)
        return atomic_write_bytes(self.segment_path(segment), lines.encode())

    def segments(self) -> list[tuple[int, Path]]:
        if not self.folder.exists():
            return []
        found = [(int(p.stem), p) for p in self.folder.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit()]
        return sorted(found)

    def discard_after(self, segment: int) -> int:
        stale = [path for number, path in self.segments() if number > segment]
        for path in stale:
            path.unlink()
        return len(stale)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for number, path in self.segments():
            for line in path.read_text().splitlines():
                if line.strip():
                    out.append({**json.loads(line), "segment": number})
        return out


def read_ledger(root: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(live_fills, live_equity) of every run under ``root`` (see module doc)."""
    fills, equity = [], []
    root = Path(root)
    runs = sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
    for folder in runs:
        for event in FileLedgerSink(root, folder.name).events():
            if event.get("event") == "fill":
                fills.append({"run": folder.name, **{k: event.get(k) for k in LIVE_FILLS_SCHEMA if k != "run"}})
            elif event.get("event") == "equity":
                equity.append({"run": folder.name, **{k: event.get(k) for k in LIVE_EQUITY_SCHEMA if k != "run"}})
    fills_frame = pl.DataFrame(fills, schema=LIVE_FILLS_SCHEMA).unique(["run", "client_order_id", "fill_id"], keep="last", maintain_order=True)
    equity_frame = pl.DataFrame(equity, schema=LIVE_EQUITY_SCHEMA).unique(["run", "bar_counter"], keep="last", maintain_order=True)
    return fills_frame, equity_frame

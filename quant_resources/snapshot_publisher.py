"""Dagster resource that publishes serving snapshots (kept apart from `snapshots` so that the
API, which only reads snapshots, never imports Dagster)."""

from __future__ import annotations

from dagster import ConfigurableResource

from quant_resources.snapshots import SnapshotPublisher


class SnapshotPublisherResource(ConfigurableResource):
    """Where the jobs publish serving snapshots (`SERVING_DIR`, default `warehouse/serving`)
    and how long a superseded snapshot stays for readers still using it."""

    serving_dir: str
    grace_seconds: float = 3600.0
    keep: int = 2

    def get(self) -> SnapshotPublisher:
        return SnapshotPublisher(self.serving_dir, self.grace_seconds, self.keep)

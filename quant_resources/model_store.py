"""Model store: checkpoint bytes and fitted FeaturePipeline state on disk (seed 004 §8.3).

Layout: ``<root>/<model>/<key>/checkpoint.pt`` and ``pipeline.json`` (``root`` defaults to
``<warehouse>/models``; ``key`` is the training partition, e.g. the week). Both files of a save
are written atomically (temp file in the same folder, fsync, ``os.replace``), the pipeline state
first, so a reader never sees a checkpoint without its pipeline. A missing checkpoint returns
None and logs a warning: the caller continues without that model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from quant_resources.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
PIPELINE_FILE = "pipeline.json"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _check(part: str, what: str) -> str:
    if not _SAFE.match(part) or part in (".", ".."):
        raise ValueError(f"{what} {part!r} must be letters, digits, '.', '_' or '-'")
    return part


class ModelStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, model: str, key: str) -> Path:
        return self.root / _check(model, "model name") / _check(key, "key")

    def save(self, model: str, key: str, checkpoint: bytes, pipeline_state: dict[str, Any]) -> Path:
        """Store a checkpoint with its fitted pipeline state; returns the folder."""
        folder = self.folder(model, key)
        atomic_write_bytes(folder / PIPELINE_FILE, json.dumps(pipeline_state, sort_keys=True).encode())
        atomic_write_bytes(folder / CHECKPOINT_FILE, bytes(checkpoint))
        return folder

    def load_checkpoint(self, model: str, key: str) -> bytes | None:
        path = self.folder(model, key) / CHECKPOINT_FILE
        if not path.exists():
            logger.warning("no checkpoint for model %s at %s: continuing without it", model, path)
            return None
        return path.read_bytes()

    def load_pipeline_state(self, model: str, key: str) -> dict[str, Any] | None:
        path = self.folder(model, key) / PIPELINE_FILE
        if not path.exists():
            logger.warning("no pipeline state for model %s at %s", model, path)
            return None
        return json.loads(path.read_text())

    def keys(self, model: str) -> list[str]:
        """Stored keys of ``model`` that have a checkpoint, sorted."""
        folder = self.root / _check(model, "model name")
        return sorted(p.name for p in folder.iterdir() if (p / CHECKPOINT_FILE).exists()) if folder.exists() else []


class ModelStoreResource(ConfigurableResource):
    """Dagster resource giving assets a ``ModelStore`` under ``root_dir`` (``settings.models_dir``)."""

    root_dir: str

    def get(self) -> ModelStore:
        return ModelStore(self.root_dir)

"""System state checkpoints (seed 004 §7): ``torch.save`` of the whole state, atomic, three backups.

``save(state)`` adds ``version`` and ``timestamp``, serialises with ``torch.save`` into a temp file
in the state folder (fsync), rotates ``<name>.bak.2 -> .bak.3``, ``.bak.1 -> .bak.2``,
``<name> -> .bak.1`` and moves the temp file to ``<name>`` (``os.replace``, folder fsync). A crash
at any point leaves either the new primary or the previous state as ``.bak.1`` (or the primary).
``load()`` tries the primary, then ``.bak.1`` .. ``.bak.3``: a corrupt or truncated file is
skipped with a warning; a version mismatch is warned and loaded anyway. Loading uses
``torch.load(weights_only=True)``: states are plain containers (dicts, lists, str, numbers,
tensors), which ``save`` enforces by converting numpy values and rejecting other objects.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from quant_resources.atomic import atomic_write_bytes, fsync_dir

logger = logging.getLogger(__name__)

STATE_VERSION = "2.0.0"
N_BACKUPS = 3


def _plain(value: Any, where: str = "state") -> Any:
    """Containers of str/int/float/bool/None/tensors only (what ``weights_only`` loading accepts)."""
    import numpy as np
    import torch

    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} cannot go into a weights-only state file")


class SystemStateManager:
    """Atomic checkpoints of the live system's state with a fallback chain of backups."""

    def __init__(self, path: str | Path, n_backups: int = N_BACKUPS, version: str = STATE_VERSION) -> None:
        self.path = Path(path)
        self.n_backups = n_backups
        self.version = version

    def backup_path(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.bak.{index}")

    def candidates(self) -> list[Path]:
        return [self.path] + [self.backup_path(i) for i in range(1, self.n_backups + 1)]

    def save(self, state: Mapping[str, Any]) -> Path:
        import torch

        payload = _plain(dict(state))
        payload["version"] = self.version
        payload["timestamp"] = datetime.now(timezone.utc).isoformat()
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for index in range(self.n_backups, 1, -1):
            older = self.backup_path(index - 1)
            if older.exists():
                older.replace(self.backup_path(index))
        if self.path.exists() and self.n_backups:
            self.path.replace(self.backup_path(1))
        fsync_dir(self.path.parent)
        atomic_write_bytes(self.path, buffer.getvalue())
        return self.path

    def _read(self, path: Path) -> dict[str, Any]:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
        return state

    def load(self) -> dict[str, Any] | None:
        """The newest readable state (primary, then backups in order), or None when there is none."""
        for path in self.candidates():
            if not path.exists():
                continue
            try:
                state = self._read(path)
            except Exception as error:  # noqa: BLE001 - any unreadable file falls back to the next
                logger.warning("State file %s unreadable (%s: %s); trying the next backup",
                               path, type(error).__name__, str(error)[:200])
                continue
            version = state.get("version")
            if version != self.version:
                logger.warning("State file %s has version %r, expected %r; loading anyway", path, version, self.version)
            logger.info("Loaded state from %s (bar_counter=%s)", path, state.get("bar_counter"))
            return state
        return None

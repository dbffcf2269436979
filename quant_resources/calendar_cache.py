"""On-disk cache of exchange session tables, so that loading the code location (partitions need
the calendar's holidays) does not import exchange-calendars and pandas in every process."""

from __future__ import annotations

import io
import logging
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from quant_lib.data.calendar import ALWAYS_OPEN, SESSION_RANGE, WEEKDAYS, register_session_table, session_table
from quant_resources.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


def _cache_path(name: str, cache_dir: Path) -> Path:
    try:
        library = version("exchange-calendars")
    except PackageNotFoundError:
        library = "unknown"
    slug = "".join(c if c.isalnum() else "_" for c in name)
    return cache_dir / "calendars" / f"{slug}-ec{library}-{SESSION_RANGE[0]}-{SESSION_RANGE[1]}.npz"


def load_session_table(name: str, cache_dir: Path) -> None:
    """Register the sessions of `name` from the cache, computing and caching them on a miss.

    The file is keyed by the exchange-calendars version and SESSION_RANGE, so an upgrade that
    changes holidays recomputes it. An unreadable cache is recomputed; an unwritable cache folder
    only costs the computation next time."""
    if name in (ALWAYS_OPEN, WEEKDAYS):
        return
    path = _cache_path(name, cache_dir)
    try:
        with np.load(path) as table:
            register_session_table(name, table["days"], table["opens"], table["closes"])
        return
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    days, opens, closes = session_table(name)
    buffer = io.BytesIO()
    np.savez(buffer, days=days, opens=opens, closes=closes)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        log.warning("could not cache the %s sessions at %s: %s", name, path, exc)

"""DAGSTER_HOME set-up: the project's `dagster.yaml` plus the batched event-log storage.

The project's `dagster.yaml` holds the instance settings (concurrency pools, telemetry). The copy
in `DAGSTER_HOME` adds an `event_log_storage` stanza selecting
`quant_resources.dagster_storage.BatchedSqliteEventLogStorage` with an absolute `base_dir`, the
directory Dagster's default storage uses (`<home>/history/runs`). The stanza lives only in the
home's copy because it names the home: `dagster dev` run without `DAGSTER_HOME` loads the
project's file into a temporary home it does not tell the storage about.

    python -m quant_resources.dagster_home HOME [PROJECT_DAGSTER_YAML]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quant_resources.atomic import atomic_write_bytes
from quant_resources.settings import PROJECT_ROOT

EVENT_LOG_STANZA = """
# Added by quant_resources.dagster_home (regenerated from the project's dagster.yaml): Dagster's
# SQLite event log, writing each batch of asset events (a backfill logs two per asset and
# partition) in one transaction instead of one per event. Same files, same schema.
event_log_storage:
  module: quant_resources.dagster_storage
  class: BatchedSqliteEventLogStorage
  config:
    base_dir: "{base_dir}"
"""


def event_log_dir(home: Path) -> Path:
    """Where Dagster's default storage keeps the per-run event logs and `index.db`."""
    return Path(home).resolve() / "history" / "runs"


def instance_yaml(home: Path, project_yaml: Path = PROJECT_ROOT / "dagster.yaml") -> str:
    """The `dagster.yaml` for `home`: the project's settings plus the batched event-log storage."""
    settings = Path(project_yaml).read_text()
    if "event_log_storage:" in settings or "\nstorage:" in f"\n{settings}":
        raise ValueError(f"{project_yaml} configures Dagster storage itself; the home's copy adds it")
    return settings.rstrip("\n") + "\n" + EVENT_LOG_STANZA.format(base_dir=f"{event_log_dir(home)}{os.sep}")


def prepare_dagster_home(home: Path, project_yaml: Path = PROJECT_ROOT / "dagster.yaml") -> Path:
    """Create `home`, (re)write its `dagster.yaml` when it differs from `instance_yaml`
    (atomically, so a concurrent reader never sees half a file) and create Dagster's storage
    once. All of it happens under an exclusive lock on `<home>/.init.lock`: processes starting
    together on a brand-new home wait for the first, instead of racing on the SQLite schema
    (`table runs already exists`). Returns `home`."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    text = instance_yaml(home, project_yaml)
    if (home / "dagster.yaml").exists() and (home / "dagster.yaml").read_text() == text and _storage_ready(home):
        return home
    with _exclusive_lock(home / ".init.lock"):
        _write_if_changed(home / "dagster.yaml", text)
        if not _storage_ready(home):
            _create_storage(home)
    return home


def _write_if_changed(target: Path, text: str) -> None:
    if target.exists() and target.read_text() == text:
        return
    atomic_write_bytes(target, text.encode())


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """An advisory exclusive lock on `path` (blocks until free; released on exit or death)."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _storage_marker(home: Path) -> Path:
    return home / ".storage_ready"


def _storage_ready(home: Path) -> bool:
    marker = _storage_marker(home)
    return marker.exists() and marker.read_text().strip() == _dagster_version()


def _dagster_version() -> str:
    from importlib.metadata import version

    return version("dagster")


def _create_storage(home: Path) -> None:
    """Open the instance once so that its run, event-log and schedule storage exist, then mark
    the home ready for this Dagster version."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_keys()
        if instance.schedule_storage is not None:
            instance.schedule_storage.all_instigator_state()
    _write_if_changed(_storage_marker(home), _dagster_version() + "\n")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m quant_resources.dagster_home HOME [PROJECT_DAGSTER_YAML]")
    prepare_dagster_home(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:]))

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
import tempfile
from pathlib import Path

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
    """Create `home` and (re)write its `dagster.yaml` when it differs from `instance_yaml`
    (atomically, so a concurrent reader never sees half a file). Returns `home`."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    text = instance_yaml(home, project_yaml)
    if target.exists() and target.read_text() == text:
        return home
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".dagster.yaml.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return home


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m quant_resources.dagster_home HOME [PROJECT_DAGSTER_YAML]")
    prepare_dagster_home(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:]))

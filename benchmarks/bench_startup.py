"""Start-up cost of the code location and of one CLI materialization (issue 14).

In the same run, wall time (median of REPEATS fresh processes) of:
  (a) ``python -c "import dagster, polars, duckdb"``  - the floor every Dagster process pays;
  (b) ``python -c "import quant_assets.definitions"`` - loading the code location;
  (c) ``dagster asset materialize --select prices --partition DAY`` on a 20-ticker simulated market
      in a fresh DAGSTER_HOME and warehouse (one run, one partition).
Targets: (b) within 1.5x of (a); (c) under 10 s on 2 idle cores.

Python only reuses bytecode it can find: where PYTHONDONTWRITEBYTECODE is set and nothing was
compiled, every process recompiles every module it imports. ``make venv`` compiles the
environment and the project (see the Makefile); the first measurement of each command here is a
warm-up and is not counted.

Run: ``.venv/bin/python benchmarks/bench_startup.py``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS, RATIO_TARGET, MATERIALIZE_TARGET_S = 5, 1.5, 10.0
PARTITION = "2024-06-03"


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def median_wall(cmd: list[str]) -> float:
    wall(cmd)
    return statistics.median(wall(cmd) for _ in range(REPEATS))


def materialize_once() -> float:
    from quant_resources.dagster_home import prepare_dagster_home

    with tempfile.TemporaryDirectory() as tmp:
        home = prepare_dagster_home(Path(tmp) / "dagster_home", ROOT / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "SIM_", "WAREHOUSE"))}
        env.update(DAGSTER_HOME=str(home), WAREHOUSE_DIR=str(Path(tmp) / "warehouse"), SIM_N_TICKERS="20")
        dagster = str(Path(sys.executable).parent / "dagster")
        return wall([dagster, "asset", "materialize", "-m", "quant_assets.definitions",
                     "--select", "prices", "--partition", PARTITION], env=env)


def main() -> None:
    python = sys.executable
    floor = median_wall([python, "-c", "import dagster, polars, duckdb"])
    location = median_wall([python, "-c", "import quant_assets.definitions"])
    materialize_once()
    materialize = statistics.median(materialize_once() for _ in range(3))
    ratio = location / floor
    print(f"(a) import dagster, polars, duckdb        {floor:6.2f} s  (median of {REPEATS})")
    print(f"(b) import quant_assets.definitions       {location:6.2f} s  (b)/(a) = {ratio:.2f}x "
          f"(target <= {RATIO_TARGET}x: {'met' if ratio <= RATIO_TARGET else 'MISSED'})")
    print(f"(c) dagster asset materialize one prices  {materialize:6.2f} s  "
          f"(target < {MATERIALIZE_TARGET_S:.0f} s: {'met' if materialize < MATERIALIZE_TARGET_S else 'MISSED'})")


if __name__ == "__main__":
    main()

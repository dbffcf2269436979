"""Start-up: loading the code location imports no heavy library that only an asset body, a
resource method or a CLI command uses, and prints no Dagster beta warning for the parameters
this project uses on purpose (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY_MODULES = (
    "sklearn", "hmmlearn", "cvxpy", "scipy.optimize", "scipy.stats", "plotly", "mlflow", "ray", "numba",
    "xgboost", "shap", "torch", "deap", "yfinance", "ccxt", "alpaca", "fastapi", "uvicorn", "gymnasium",
    "pandera", "pandas", "matplotlib",
)


def _loaded_heavy_modules(statement: str) -> list[str]:
    probe = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY_MODULES)!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    [
        "import quant_assets.definitions",
        "import quant_lib.factors, quant_lib.regime, quant_lib.portfolio, quant_lib.risk",
        "import quant_lib.backtest, quant_lib.research, quant_lib.reporting, quant_lib.data.quality",
    ],
)
def test_loading_imports_no_heavy_library(statement: str) -> None:
    _loaded_heavy_modules(statement)  # the first load writes the calendar's session cache
    assert _loaded_heavy_modules(statement) == []


def test_the_heavy_libraries_still_load_when_used() -> None:
    """The deferred imports resolve: using a function imports its library."""
    statement = (
        "import numpy as np\n"
        "from quant_lib.portfolio.kelly import default_solver\n"
        "from quant_lib.risk.var import parametric_var\n"
        "default_solver()\n"
        "assert abs(parametric_var(np.ones(1), np.eye(1)) - 1.6448536269514722) < 1e-12\n"
    )
    assert "cvxpy" in _loaded_heavy_modules(statement)


def test_dagster_beta_warnings_are_silenced_only_for_our_parameters() -> None:
    probe = (
        "import warnings\nwarnings.simplefilter('default')\n"
        "import quant_assets.definitions\n"
        "from dagster import BetaWarning\n"
        "warnings.warn('Parameter `some_other_parameter` of function `asset` is currently in beta', BetaWarning)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "backfill_policy" not in out.stderr
    assert "allow_nonexistent_upstream_partitions" not in out.stderr
    assert "some_other_parameter" in out.stderr

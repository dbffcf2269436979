# quant-platform: every target creates the virtual environment when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WAREHOUSE_DIR ?= $(CURDIR)/warehouse
export DAGSTER_HOME ?= $(WAREHOUSE_DIR)/.dagster
PYTEST_ARGS ?=
BACKTEST_ARGS ?=

.PHONY: venv dagster-home run test dev bench backtest clean-warehouse serve

# uv resolves and installs the whole stack in ~30 s; it is bootstrapped with pip into the venv.
# /opt/wheels (when present) holds the machine's CPU build of torch==2.13.0.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode $(if $(wildcard /opt/wheels),--find-links /opt/wheels) -e ".[dev]"
	@touch $(STAMP)

# Bytecode is written explicitly, at install (--compile-bytecode) and here for the project's own
# packages (only changed files): where PYTHONDONTWRITEBYTECODE is set, as on this project's
# machines, Python would otherwise recompile every module it imports in every process, which
# made each CLI call, sensor evaluation and subprocess test pay ~10 s of compilation.
venv: $(STAMP)
	@$(PY) -m compileall -q $(wildcard quant_*/)

# DAGSTER_HOME's dagster.yaml: this project's settings plus the batched event-log storage.
dagster-home: venv
	@$(PY) -m quant_resources.dagster_home $(DAGSTER_HOME) dagster.yaml

run: venv dagster-home
	$(PY) -m quant_assets.run_daily

backtest: venv dagster-home
	$(PY) -m quant_assets.run_backtest $(BACKTEST_ARGS)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

dev: venv dagster-home
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# The read-only API + dashboard over the published snapshots (API_HOST / API_PORT, default 127.0.0.1:8000).
serve: venv
	$(PY) -m quant_api

bench: venv
	@set -e; for script in benchmarks/bench_*.py; do echo "=== $$script"; $(PY) $$script; done

clean-warehouse:
	rm -rf $(WAREHOUSE_DIR)/quant.duckdb $(WAREHOUSE_DIR)/.dagster

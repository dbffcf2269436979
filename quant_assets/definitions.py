"""The Dagster code location: `dagster dev -m quant_assets.definitions`.

Runs use the in-process executor: every step touches the single-writer DuckDB warehouse and
so runs one at a time anyway (pool `duckdb_warehouse`), and a process per step would only add
the import cost of the whole stack to each step."""

from __future__ import annotations

from dagster import Definitions, in_process_executor, load_assets_from_modules

from quant_assets import alpha, execution, intraday, learning, market, ml, portfolio, research, serving, trading
from quant_assets.execution import live_ledger_job, live_ledger_sensor
from quant_assets.jobs import daily_job, weekly_research_job
from quant_assets.resources import build_resources
from quant_assets.schedules import daily_after_close_schedule, weekly_research_schedule
from quant_assets.sensors import market_data_freshness_sensor

defs = Definitions(
    assets=load_assets_from_modules([market, alpha, portfolio, research, intraday, ml, learning, execution, serving, trading]),
    jobs=[daily_job, weekly_research_job, live_ledger_job, learning.model_training_job],
    schedules=[daily_after_close_schedule, weekly_research_schedule],
    sensors=[market_data_freshness_sensor, live_ledger_sensor, learning.retrain_sensor],
    resources=build_resources(),
    executor=in_process_executor,
)

"""Issue 15 item 1 for the `quant` CLI: `quant download` recovers runs whose process died
(marks them failed, frees their pool slot) before it starts its own, saying so in one line."""

from __future__ import annotations

from click.testing import CliRunner
from dagster import DagsterInstance, DagsterRunStatus

from quant_resources.settings import get_settings
from tests.quant_resources.test_run_recovery import POOL, _dead_pid, _started_run


def test_quant_download_recovers_dead_runs_first(tmp_path, monkeypatch):
    import quant_assets.reporting as reporting
    from quant_assets.cli import main
    from quant_resources.dagster_home import prepare_dagster_home

    home = prepare_dagster_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "wh"))
    get_settings.cache_clear()
    with DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        dead = _started_run(instance, _dead_pid())
    monkeypatch.setattr(reporting, "backfill_missing", lambda *args, **kwargs: [])
    try:
        result = CliRunner().invoke(main, ["download", "--days", "1"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("recovered 1 run(s)")], result.output
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots

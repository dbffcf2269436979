"""ExperimentStore: lineage files, deterministic run ids, atomic replace, trial counting and
MLflow logging on a local SQLite store in a temporary folder (offline)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from quant_resources.experiments import (
    RUN_FILES,
    ExperimentStore,
    current_git_sha,
    make_run_id,
)

NAME = "momentum_sweep"
CONFIG = {"strategy": "top_n", "top_n": 20, "lookback": 126, "costs": {"commission_bps": 1.0}}
DATA_VERSION = {"start": dt.date(2020, 1, 1), "end": dt.date(2024, 12, 31), "prices": "v3", "universe": "v1"}
METRICS = {"sharpe_ratio": 1.25, "max_drawdown": -0.18, "total_trades": 412, "calmar_ratio": float("nan")}


def make_daily() -> pl.DataFrame:
    dates = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(5)]
    returns = [0.0, 0.01, -0.02, 0.015, 0.005]
    equity = [1e6]
    for r in returns[1:]:
        equity.append(equity[-1] * (1 + r))
    return pl.DataFrame({"date": dates, "equity": equity, "returns": returns})


def make_trades() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
            "ticker": ["AAA", "AAB"],
            "trade_weight": [0.05, -0.02],
            "trade_value": [50_000.0, -20_200.0],
            "cost": [15.0, 6.06],
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ExperimentStore(tmp_path_factory.mktemp("experiments"))


@pytest.fixture(scope="module")
def saved(store):
    return store.save_experiment(NAME, CONFIG, make_daily(), make_trades(), METRICS, DATA_VERSION, {"owner": "research"})


def test_run_folder_has_all_lineage_files(store, saved):
    assert saved.path == store.runs_dir / saved.run_id
    assert sorted(p.name for p in saved.path.iterdir()) == sorted(RUN_FILES)
    assert json.loads((saved.path / "config.json").read_text()) == CONFIG
    metrics = json.loads((saved.path / "metrics.json").read_text())
    assert metrics == {"sharpe_ratio": 1.25, "max_drawdown": -0.18, "total_trades": 412, "calmar_ratio": None}
    metadata = json.loads((saved.path / "metadata.json").read_text())
    assert metadata["run_id"] == saved.run_id
    assert metadata["git_sha"] == saved.git_sha
    assert metadata["data_version"] == {"start": "2020-01-01", "end": "2024-12-31", "prices": "v3", "universe": "v1"}
    assert metadata["mlflow_run_id"] == saved.mlflow_run_id
    assert dt.datetime.fromisoformat(metadata["created_at"]).tzinfo is not None
    assert pl.read_parquet(saved.path / "equity_curve.parquet").equals(make_daily())
    assert pl.read_parquet(saved.path / "trades.parquet").equals(make_trades())


def test_run_id_is_a_function_of_name_config_and_data():
    assert make_run_id(NAME, CONFIG, DATA_VERSION) == make_run_id(NAME, dict(reversed(CONFIG.items())), DATA_VERSION)
    assert make_run_id(NAME, CONFIG, DATA_VERSION) != make_run_id(NAME, {**CONFIG, "top_n": 21}, DATA_VERSION)
    assert make_run_id(NAME, CONFIG, DATA_VERSION) != make_run_id(NAME, CONFIG, {**DATA_VERSION, "prices": "v4"})
    assert make_run_id(NAME, CONFIG, DATA_VERSION).startswith("momentum_sweep-")
    with pytest.raises(ValueError, match="no letters or digits"):
        make_run_id("  ", CONFIG, DATA_VERSION)


def test_resaving_same_config_replaces_run_deterministically(store, saved):
    before = {name: (saved.path / name).read_bytes() for name in ("config.json", "metrics.json")}
    again = store.save_experiment(NAME, CONFIG, make_daily(), make_trades(), METRICS, DATA_VERSION, {"owner": "research"})
    assert again.run_id == saved.run_id
    assert again.mlflow_run_id == saved.mlflow_run_id
    assert {name: (again.path / name).read_bytes() for name in before} == before
    leftovers = [p.name for p in store.runs_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert store.list_experiments(NAME).filter(pl.col("run_id") == saved.run_id).height == 1


def test_mlflow_received_params_metrics_tags_and_artifacts(store, saved):
    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store.mlflow_tracking_uri)
    try:
        runs = mlflow.search_runs(
            experiment_names=[NAME], filter_string=f"tags.`quant.run_id` = '{saved.run_id}'"
        )
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["run_id"] == saved.mlflow_run_id
    assert run["status"] == "FINISHED"
    assert run["metrics.sharpe_ratio"] == pytest.approx(1.25)
    assert run["metrics.total_trades"] == pytest.approx(412)
    assert "metrics.calmar_ratio" not in runs.columns or runs["metrics.calmar_ratio"].isna().all()
    assert run["params.top_n"] == "20"
    assert run["params.costs.commission_bps"] == "1.0"
    assert run["tags.owner"] == "research"
    assert run["tags.data_version.prices"] == "v3"
    assert run["tags.data_version.start"] == "2020-01-01"
    assert run["tags.mlflow.source.git.commit"] == saved.git_sha
    artifacts = {a.path for a in store.mlflow_client().list_artifacts(saved.mlflow_run_id)}
    assert artifacts == set(RUN_FILES)


def test_trial_count_tracks_distinct_configs(store, saved):
    other_data = {**DATA_VERSION, "prices": "v4"}
    store.save_experiment(NAME, CONFIG, make_daily(), make_trades(), METRICS, other_data)
    assert store.count_trials(NAME) == 1, "the same config on new data is not a new trial"
    store.save_experiment(NAME, {**CONFIG, "top_n": 30}, make_daily(), make_trades(), {"sharpe_ratio": 0.9}, DATA_VERSION)
    assert store.count_trials(NAME) == 2
    ga_evaluations = [{"lookback": 60, "top_n": 10}, {"lookback": 90, "top_n": 10}, {"lookback": 60, "top_n": 10}]
    assert store.record_trials(NAME, ga_evaluations) == 4
    assert store.record_trials(NAME, ga_evaluations[:1]) == 4
    assert store.count_trials("never_run") == 0


def test_list_and_load(store, saved):
    listing = store.list_experiments(NAME)
    assert {"run_id", "name", "created_at", "git_sha", "config_hash", "mlflow_run_id", "path", "sharpe_ratio"} <= set(
        listing.columns
    )
    assert set(listing["name"]) == {NAME}
    assert listing.schema["created_at"] == pl.Datetime("us", "UTC")
    row = listing.filter(pl.col("run_id") == saved.run_id).row(0, named=True)
    assert row["sharpe_ratio"] == 1.25
    assert store.list_experiments("other_name").height == 0
    loaded = store.load_experiment(saved.run_id)
    assert loaded.config == CONFIG
    assert loaded.metrics["sharpe_ratio"] == 1.25
    assert loaded.daily.equals(make_daily())
    assert loaded.trades.equals(make_trades())
    assert loaded.record.mlflow_run_id == saved.mlflow_run_id
    with pytest.raises(FileNotFoundError, match="no experiment run 'missing-0000'"):
        store.load_experiment("missing-0000")


def test_failed_write_leaves_previous_run_intact(store, saved):
    unwritable = make_trades().with_columns(pl.Series("payload", [object(), object()], dtype=pl.Object))
    before = (saved.path / "metadata.json").read_bytes()
    with pytest.raises(Exception):
        store.save_experiment(NAME, CONFIG, make_daily(), unwritable, METRICS, DATA_VERSION, {"owner": "research"})
    assert (saved.path / "metadata.json").read_bytes() == before
    assert [p.name for p in store.runs_dir.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ValueError, match="'date' column"):
        store.save_experiment(NAME, CONFIG, make_daily().drop("date"), make_trades(), METRICS, DATA_VERSION)


def test_folders_only_mode_and_git_fallback(tmp_path):
    plain = ExperimentStore(tmp_path / "plain", enable_mlflow=False, git_sha="abc123")
    record = plain.save_experiment("plain", {"a": 1}, make_daily(), make_trades(), {"m": 1.0}, {"v": 1})
    assert record.mlflow_run_id is None and record.git_sha == "abc123"
    assert not (tmp_path / "plain" / "mlflow.db").exists()
    assert current_git_sha(cwd=tmp_path) == "unknown"

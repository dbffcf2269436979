"""ModelRegistry on a temporary SQLite MLflow store (offline): register with alias, get by alias
and version, artifacts round-trip, promotion moves the alias, history, unreachable stores."""

from __future__ import annotations

import datetime as dt

import pytest

from quant_resources.model_registry import (
    ModelRegistry,
    ModelRegistryResource,
    RegisteredVersion,
    RegistryUnavailableError,
)

NAME = "meta_labeler"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return ModelRegistryResource(root_dir=str(tmp_path_factory.mktemp("mlruns"))).get()


@pytest.fixture(scope="module")
def two_versions(registry):
    first = registry.register(
        NAME,
        {"model.json": b'{"trees": 1}', "features.json": b'["vol", "mom"]'},
        params={"max_depth": 4, "n_estimators": 100},
        metrics={"cv_auc": 0.61, "log_loss": 0.66},
        tags={"data_version": "2024-06-28"},
    )
    second = registry.register(
        NAME,
        {"model.json": b'{"trees": 2}'},
        params={"max_depth": 3},
        metrics={"cv_auc": 0.58},
    )
    return first, second


def test_register_returns_version_with_run_data_and_alias(two_versions):
    first, second = two_versions
    assert isinstance(first, RegisteredVersion)
    assert (first.name, first.version, second.version) == (NAME, 1, 2)
    assert first.metrics == {"cv_auc": 0.61, "log_loss": 0.66}
    assert first.params == {"max_depth": "4", "n_estimators": "100"}
    assert first.tags["data_version"] == "2024-06-28"
    assert first.aliases == ("challenger",)
    assert second.aliases == ("challenger",)
    assert first.run_id != second.run_id
    assert first.created_at.tzinfo is not None
    assert abs(first.created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=10)


def test_get_by_alias_version_and_missing(registry, two_versions):
    first, second = two_versions
    assert registry.get(NAME, "challenger").version == second.version
    assert registry.get(NAME, 1).run_id == first.run_id
    assert registry.get(NAME, "1").run_id == first.run_id
    assert registry.get(NAME, 99) is None
    assert registry.get(NAME, "no_such_alias") is None
    assert registry.get("never_registered", "champion") is None


def test_artifacts_round_trip(registry, two_versions):
    assert registry.load_artifact(NAME, 1, "features.json") == b'["vol", "mom"]'
    assert registry.load_artifact(NAME, "challenger", "model.json") == b'{"trees": 2}'
    with pytest.raises(FileNotFoundError, match="features.json"):
        registry.load_artifact(NAME, 2, "features.json")
    with pytest.raises(LookupError, match="champion"):
        registry.load_artifact(NAME, "champion", "model.json")
    with pytest.raises(ValueError, match="plain file name"):
        registry.load_artifact(NAME, 1, "../mlflow.db")


def test_promote_moves_champion_and_history_shows_it(registry, two_versions):
    registry.promote(NAME, 1)
    assert registry.get(NAME, "champion").version == 1
    registry.promote(NAME, 2)
    history = registry.history(NAME)
    assert [v.version for v in history] == [1, 2]
    assert history[0].aliases == ()
    assert history[1].aliases == ("challenger", "champion")
    assert registry.load_artifact(NAME, "champion", "model.json") == b'{"trees": 2}'
    with pytest.raises(ValueError, match="no version 7"):
        registry.promote(NAME, 7)
    assert registry.get(NAME, "champion").version == 2
    assert registry.history("never_registered") == []


def test_bad_input_is_rejected_before_any_write(registry, two_versions):
    before = len(registry.history(NAME))
    with pytest.raises(ValueError, match="at least one artifact"):
        registry.register(NAME, {}, params={}, metrics={})
    with pytest.raises(ValueError, match="plain file names"):
        registry.register(NAME, {"a/b.json": b""}, params={}, metrics={})
    with pytest.raises(ValueError, match="'auc' is not finite"):
        registry.register(NAME, {"m.json": b""}, params={}, metrics={"auc": float("nan")})
    assert len(registry.history(NAME)) == before


def test_failed_alias_leaves_no_version_or_run(registry, two_versions):
    before = registry.history(NAME)
    with pytest.raises(Exception):  # noqa: B017 - MLflow rejects the reserved alias "latest"
        registry.register(NAME, {"m.json": b"x"}, params={}, metrics={}, alias="latest")
    after = registry.history(NAME)
    assert [v.version for v in after] == [v.version for v in before]
    experiment = registry.client().get_experiment_by_name(NAME)
    assert len(registry.client().search_runs([experiment.experiment_id])) == len(before)
    assert registry.get(NAME, "challenger").version == before[-1].version


def test_unreachable_sqlite_store_raises_clear_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    registry = ModelRegistry(f"sqlite:///{blocker}/sub/mlflow.db", tmp_path / "art")
    with pytest.raises(RegistryUnavailableError, match="unavailable.*nothing was changed"):
        registry.register(NAME, {"m.json": b"x"}, params={}, metrics={})
    with pytest.raises(RegistryUnavailableError):
        registry.get(NAME, "champion")
    assert not (tmp_path / "art").exists()


def test_unreachable_server_raises_without_retrying(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = ModelRegistry(f"http://127.0.0.1:{port}", tmp_path / "art")
    with pytest.raises(RegistryUnavailableError, match=f"127.0.0.1:{port}"):
        registry.promote(NAME, 1)

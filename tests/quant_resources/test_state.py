"""SystemStateManager: atomic save, backup rotation, fallback order over corrupt/truncated files, version warning."""

import logging

import numpy as np
import pytest
import torch

from quant_resources.state import SystemStateManager


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _save_n(manager, n):
    for counter in range(1, n + 1):
        manager.save({"bar_counter": counter, "models": {"m": {"state_dict": {"w": torch.full((2,), float(counter))}}}})


def test_save_load_round_trip_with_tensors_and_numpy(tmp_path):
    manager = SystemStateManager(tmp_path / "state" / "system_state.pt")
    manager.save({"bar_counter": 7, "x": np.float64(1.5), "arr": np.arange(3), "w": torch.ones(2)})
    state = manager.load()
    assert state["bar_counter"] == 7 and state["x"] == 1.5 and state["arr"] == [0, 1, 2]
    assert torch.equal(state["w"], torch.ones(2))
    assert state["version"] == "2.0.0" and "timestamp" in state
    assert not list((tmp_path / "state").glob("*.tmp"))


def test_rotation_keeps_three_backups(tmp_path):
    manager = SystemStateManager(tmp_path / "system_state.pt")
    _save_n(manager, 5)
    counters = [torch.load(p, weights_only=True)["bar_counter"] for p in manager.candidates()]
    assert counters == [5, 4, 3, 2]
    assert not (tmp_path / "system_state.pt.bak.4").exists()


@pytest.mark.parametrize("n_bad", [0, 1, 2, 3])
def test_corrupt_files_fall_back_in_order(tmp_path, caplog, n_bad):
    manager = SystemStateManager(tmp_path / "system_state.pt")
    _save_n(manager, 4)
    for index, path in enumerate(manager.candidates()[:n_bad]):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if index % 2 else b"garbage" * 10)
    with caplog.at_level(logging.WARNING):
        state = manager.load()
    assert state["bar_counter"] == 4 - n_bad
    assert torch.equal(state["models"]["m"]["state_dict"]["w"], torch.full((2,), float(4 - n_bad)))
    assert caplog.text.count("unreadable") == n_bad


def test_all_corrupt_or_missing_gives_none(tmp_path):
    manager = SystemStateManager(tmp_path / "system_state.pt")
    assert manager.load() is None
    _save_n(manager, 1)
    manager.path.write_bytes(b"")
    assert manager.load() is None


def test_version_mismatch_warns_and_loads(tmp_path, caplog):
    SystemStateManager(tmp_path / "s.pt", version="1.0.0").save({"bar_counter": 3})
    with caplog.at_level(logging.WARNING):
        state = SystemStateManager(tmp_path / "s.pt").load()
    assert state["bar_counter"] == 3
    assert "version '1.0.0'" in caplog.text


def test_unsupported_objects_are_refused_before_writing(tmp_path):
    manager = SystemStateManager(tmp_path / "s.pt")
    with pytest.raises(TypeError, match="state.bad"):
        manager.save({"bad": object()})
    assert not manager.path.exists()

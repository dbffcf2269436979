"""Model store: atomic checkpoint + pipeline state files; a missing checkpoint is None, logged."""

from __future__ import annotations

import logging

import pytest

from quant_resources.model_store import ModelStore, ModelStoreResource


def test_round_trip_missing_and_bad_names(tmp_path, caplog) -> None:
    store = ModelStoreResource(root_dir=str(tmp_path)).get()
    folder = store.save("lstm", "2024-06-22", b"weights", {"feature_names": ["a"]})
    assert store.load_checkpoint("lstm", "2024-06-22") == b"weights"
    assert store.load_pipeline_state("lstm", "2024-06-22") == {"feature_names": ["a"]}
    assert store.keys("lstm") == ["2024-06-22"] and store.keys("gru") == []
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "pipeline.json"]
    with caplog.at_level(logging.WARNING):
        assert store.load_checkpoint("lstm", "2024-06-29") is None
    assert "continuing without it" in caplog.text
    with pytest.raises(ValueError, match="key"):
        store.save("lstm", "../escape", b"", {})


def test_failed_write_leaves_the_previous_files(tmp_path, monkeypatch) -> None:
    store = ModelStore(tmp_path)
    store.save("lstm", "w1", b"old", {"v": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("quant_resources.atomic.os.replace", broken_replace)
    with pytest.raises(OSError):
        store.save("lstm", "w1", b"new", {"v": 2})
    monkeypatch.undo()
    assert store.load_checkpoint("lstm", "w1") == b"old"
    assert store.load_pipeline_state("lstm", "w1") == {"v": 1}
    assert [p.name for p in (tmp_path / "lstm" / "w1").iterdir() if p.name.startswith(".")] == []

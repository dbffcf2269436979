"""Shared builders for the live-loop tests: tiny nets, an in-memory state store and ledger sink."""

from __future__ import annotations

import copy

import torch

from quant_lib.execution import PaperExecutor
from quant_lib.live import IncrementalBarFeatures, LiveConfig, SelfTrainer
from quant_lib.live.bars import bar_groups
from quant_lib.models import build_model
from quant_lib.strategies import EnsembleStrategy, MLSignalStrategy

TINY = {
    "transformer": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "dropout": 0.0},
    "itransformer": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "dropout": 0.0},
    "lstm": {"hidden_size": 8, "n_layers": 1, "n_heads": 2, "dropout": 0.0},
    "momentum": {"hidden_size": 8, "n_heads": 2, "dropout": 0.0},
}


def tiny_models(seq_len: int = 10, names=tuple(TINY)) -> dict:
    torch.manual_seed(0)
    n_features = IncrementalBarFeatures.n_features
    return {
        name: build_model(name, n_features=n_features, seq_len=seq_len,
                          forecast_horizon=1 if name == "momentum" else 2, **TINY[name])
        for name in names
    }


def ensemble_for(models: dict) -> EnsembleStrategy:
    return EnsembleStrategy({
        name: MLSignalStrategy(kind="position" if name == "momentum" else "return",
                               confidence_scale=0.2 if name == "momentum" else 0.002, name=name)
        for name in models
    })


class MemoryStore:
    """StateStore in memory (deep copies, like a file round trip)."""

    def __init__(self) -> None:
        self.state = None
        self.saves = 0

    def save(self, state):
        self.state = copy.deepcopy(dict(state))
        self.saves += 1

    def load(self):
        return copy.deepcopy(self.state)


class MemorySink:
    def __init__(self) -> None:
        self.segments: dict[int, list] = {}

    def write_segment(self, segment, events):
        self.segments[segment] = list(events)

    def discard_after(self, segment):
        stale = [k for k in self.segments if k > segment]
        for key in stale:
            del self.segments[key]
        return len(stale)

    def events(self):
        return [e for k in sorted(self.segments) for e in self.segments[k]]


def make_trainer(store=None, sink=None, config: LiveConfig | None = None, models=None, **kwargs) -> SelfTrainer:
    models = tiny_models() if models is None else models
    return SelfTrainer(
        models, ensemble_for(models), PaperExecutor(initial_capital=100_000.0),
        state_store=store, ledger_sink=sink, config=config or LiveConfig(retrain_enabled=False, checkpoint_interval=0),
        register_signals=False, **kwargs,
    )


bar_dicts = bar_groups

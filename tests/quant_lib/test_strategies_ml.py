"""MLSignalStrategy and EnsembleStrategy: known answers for threshold, confirmation, cooldown, vote, weights."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.strategies import BaseStrategy, EnsembleStrategy, MLSignalStrategy, Signal


def _frame(n: int = 3, symbol: str = "AAA") -> pl.DataFrame:
    start = datetime(2025, 1, 2, 9, 30)
    return pl.DataFrame(
        {
            "timestamp": [start + timedelta(minutes=5 * i) for i in range(n)],
            "close": np.linspace(100, 101, n),
            "symbol": [symbol] * n,
        }
    )


def _run(strategy, scores):
    out = []
    for score in scores:
        signals = strategy.generate_signals({"AAA": _frame()}, {"AAA": np.array([score])})
        out.append(signals[0].direction if signals else 0)
    return out


def test_no_predictions_no_signals():
    assert MLSignalStrategy().safe_generate_signals(_frame(), None) == []


def test_threshold_and_confidence_scaling():
    strategy = MLSignalStrategy(threshold=0.001, confidence_scale=0.004)
    assert strategy.generate_signals(_frame(), np.array([0.0005, 0.0005])) == []
    [signal] = strategy.generate_signals(_frame(), np.array([-0.002, -0.002]))
    assert signal.direction == -1
    assert signal.confidence == pytest.approx(0.5)
    assert signal.target_position == pytest.approx(-0.5)
    [full] = strategy.generate_signals(_frame(), np.array([0.01]))
    assert full.confidence == 1.0


def test_min_confidence_gate():
    strategy = MLSignalStrategy(confidence_scale=0.01, min_confidence=0.5)
    assert strategy.generate_signals(_frame(), np.array([0.004])) == []
    assert strategy.generate_signals(_frame(), np.array([0.006]))[0].direction == 1


def test_confirmation_needs_n_bars_of_same_direction():
    strategy = MLSignalStrategy(confirmation_bars=3)
    assert _run(strategy, [0.01, 0.01, 0.01, 0.01, -0.01, -0.01, -0.01]) == [0, 0, 1, 1, 0, 0, -1]


def test_cooldown_suppresses_following_bars():
    strategy = MLSignalStrategy(cooldown_bars=2)
    assert _run(strategy, [0.01] * 7) == [1, 0, 0, 1, 0, 0, 1]


def test_state_round_trip_continues_counters():
    first = MLSignalStrategy(confirmation_bars=3, cooldown_bars=1)
    _run(first, [0.01, 0.01])
    second = MLSignalStrategy(confirmation_bars=3, cooldown_bars=1)
    second.load_state(first.get_state())
    assert _run(second, [0.01, 0.01, 0.01]) == [1, 0, 1]


def test_position_kind_uses_first_value():
    [signal] = MLSignalStrategy(kind="position", confidence_scale=1.0).generate_signals(_frame(), np.array([-0.3]))
    assert (signal.direction, signal.confidence) == (-1, pytest.approx(0.3))


class _Raises(BaseStrategy):
    requires_predictions = True

    def generate_signals(self, data, predictions=None):
        raise RuntimeError("boom")


def _ensemble(**kwargs):
    members = {name: MLSignalStrategy(confidence_scale=0.01) for name in ("a", "b", "c")}
    return EnsembleStrategy(members, **kwargs)


def test_weighted_vote_and_flat_consensus():
    ensemble = _ensemble(weights={"a": 0.5, "b": 0.3, "c": 0.2})
    [signal] = ensemble.generate_signals(_frame(), {"a": [0.01], "b": [0.01], "c": [-0.01]})
    assert signal.direction == 1
    assert signal.confidence == pytest.approx(0.5 + 0.3 - 0.2)
    # a: +0.5*0.1, b: -0.3*0.1, c: -0.2*0.1 -> 0.0: flat, no signal
    assert ensemble.generate_signals(_frame(), {"a": [0.001], "b": [-0.001], "c": [-0.001]}) == []


def test_failing_member_is_logged_and_skipped(caplog):
    ensemble = EnsembleStrategy({"bad": _Raises(), "good": MLSignalStrategy(confidence_scale=0.01)})
    [signal] = ensemble.generate_signals(_frame(), {"bad": [1.0], "good": [0.01]})
    assert signal.direction == 1 and signal.confidence == pytest.approx(0.5)
    assert "ensemble member bad raised" in caplog.text


def test_update_weights_moves_toward_better_models_and_round_trips():
    ensemble = _ensemble()
    ensemble.update_weights({"a": 2.0, "b": 0.0, "c": -1.0})
    weights = ensemble.weights
    assert weights["a"] > weights["b"] > weights["c"] >= ensemble.min_weight
    assert sum(weights.values()) == pytest.approx(1.0)
    restored = _ensemble()
    saved = {}
    ensemble.save_state(saved.update)
    restored.load_state(saved)
    assert restored.weights == pytest.approx(weights)
    assert restored.rolling_sharpes["a"] == 2.0


def test_signal_rejects_bad_direction():
    with pytest.raises(ValueError):
        Signal(timestamp=datetime(2025, 1, 1), symbol="A", direction=2)

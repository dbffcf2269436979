"""Streaming BOCPD in the live loop: the bocpd retrain trigger fires after a planted volatility
break and not on stationary bars; the detector survives a restart bit for bit and equals the
offline feature column's definition for one ticker."""

import logging
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
import torch

from quant_lib.live import IncrementalBarFeatures, LiveConfig, PipelineBarFeatures
from quant_lib.live.bars import bar_groups
from quant_lib.live.changepoint import ChangePointMonitor
from quant_lib.regime.bocpd import detect_change_points
from quant_lib.regime.bocpd_input import factor_shocks

from .live_helpers import make_trainer, tiny_models
from .test_live_features import _Pipeline

BREAK = 300


def _returns(n: int, break_at: int | None, seed: int = 7) -> np.ndarray:
    """Gaussian 5-minute log returns (sigma 0.1%), x3 volatility from ``break_at`` on."""
    r = np.random.default_rng(seed).normal(0.0, 0.001, n)
    if break_at is not None:
        r[break_at:] *= 3.0
    return r


def _bars(returns: np.ndarray, symbol: str = "AAPL") -> list[dict]:
    close = 100.0 * np.exp(np.cumsum(np.concatenate([[0.0], returns])))
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "timestamp": [start + timedelta(minutes=5 * i) for i in range(len(close))], "symbol": symbol,
        "open": np.concatenate([[close[0]], close[:-1]]), "high": close * 1.0005, "low": close * 0.9995,
        "close": close, "volume": np.full(len(close), 1_000.0),
    })
    frame = frame.with_columns(pl.max_horizontal("open", "high").alias("high"), pl.min_horizontal("open", "low").alias("low"))
    return bar_groups(frame)


def _triggers(returns: np.ndarray, caplog) -> list[tuple[int, str]]:
    torch.manual_seed(0)
    config = LiveConfig(retrain_interval=10_000, retrain_min_samples=50, sharpe_threshold=-1e9, checkpoint_interval=0,
                        retrain_epochs=1, retrain_batch_size=64)
    trainer = make_trainer(config=config, models=tiny_models(names=("lstm",)))
    trainer.start()
    try:
        with caplog.at_level(logging.INFO, logger="quant_lib.live.self_trainer"):
            for bar in _bars(returns):
                trainer.process_bar(bar)
    finally:
        trainer.shutdown()
    found = (re.search(r"Retrain triggered at bar (\d+) \| reasons: (.*)", m) for m in caplog.messages)
    return [(int(m.group(1)), m.group(2)) for m in found if m]


def test_bocpd_trigger_fires_within_a_few_bars_of_a_volatility_break(caplog):
    triggers = _triggers(_returns(420, BREAK), caplog)
    # bar N of the loop holds return N - 1 (the first bar has none): the break reaches bar BREAK + 1
    assert len(triggers) == 1, triggers
    bar, reasons = triggers[0]
    assert BREAK + 1 <= bar <= BREAK + 8
    assert re.fullmatch(r"bocpd \(cp_score (0\.\d\d|1\.00) > 0\.80 on AAPL\)", reasons), reasons


def test_bocpd_trigger_stays_silent_on_stationary_bars(caplog):
    assert _triggers(_returns(420, None), caplog) == []


@pytest.mark.parametrize("engine", ["incremental", "pipeline"])
def test_scores_survive_a_restart_bit_for_bit_and_match_the_offline_column(engine):
    def make():
        return IncrementalBarFeatures() if engine == "incremental" else PipelineBarFeatures(_Pipeline(), window=30)

    returns = _returns(400, BREAK, seed=11)
    bars = [group["AAPL"] for group in _bars(returns)]
    straight, first = make(), make()
    expected, got = [], []
    for i, bar in enumerate(bars):
        if i == 250:
            restored = make()
            restored.load_state(first.get_state())
            first = restored
        straight.update("AAPL", bar)
        first.update("AAPL", bar)
        expected.append((straight.cp_score, straight.cp_severity))
        got.append((first.cp_score, first.cp_severity))
    assert got == expected  # bit for bit, across the restart
    offline, _ = detect_change_points(factor_shocks(returns[:, None]))
    scored = np.isfinite(offline[:, 0])
    live = np.array([score for score, _ in expected[1:]])
    np.testing.assert_allclose(live[scored], offline[scored, 0], rtol=0, atol=1e-9)
    assert live[BREAK + 5] > 0.8 and live[:BREAK].max() < 0.8


def test_cp_score_is_the_max_over_symbols_and_can_be_turned_off():
    monitor = ChangePointMonitor()
    calm, broken = _returns(BREAK + 6, None, seed=1), _returns(BREAK + 6, BREAK, seed=2)
    for a, b in zip(calm, broken):
        monitor.update("CALM", a)
        monitor.update("BROKEN", b)
    assert monitor.cp_symbol == "BROKEN" and monitor.cp_score == monitor.scores["BROKEN"][0] > 0.8
    assert monitor.scores["CALM"][0] < 0.8 and monitor.cp_severity > 0
    assert IncrementalBarFeatures(bocpd=False).cp_score is None
    with pytest.raises(ValueError, match="hazard"):
        IncrementalBarFeatures(bocpd_params={"hazard": 2.0})

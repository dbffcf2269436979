"""`quant live` on a real bar feed: Alpaca market data from a fake server on 127.0.0.1, a fake clock
(no real sleeping), warm-up, restart from the state's last bar (nothing reprocessed or skipped),
an outage that stops the loop with the state saved, and the CLI's errors."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import torch
from click.testing import CliRunner

from quant_assets.cli import main
from quant_assets.live_runner import LiveOptions, run_live_feed
from quant_lib.live.feed import FeedUnavailable
from quant_resources.ledger import FileLedgerSink
from quant_resources.settings import get_settings
from quant_resources.state import SystemStateManager
from tests.quant_resources.fake_alpaca_data import FakeAlpacaData
from tests.quant_lib.test_live_feed import FakeClock
from tests.quant_resources.test_live_feeds import xnys_tape

UTC = timezone.utc
FIVE = timedelta(minutes=5)


@pytest.fixture
def env(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.setenv("APCA_API_KEY_ID", "key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret")
    get_settings.cache_clear()
    yield tmp_path / "wh", monkeypatch
    get_settings.cache_clear()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_quant", False)]:
        root.removeHandler(handler)
        handler.close()


def _equity_stamps(warehouse):
    events = FileLedgerSink(warehouse / "ledger", "feed").events()
    return [datetime.fromisoformat(e["timestamp"]) for e in events if e["event"] == "equity"]


def test_live_on_alpaca_bars_resumes_after_the_saved_bar_and_stops_cleanly_on_outage(env, caplog):
    warehouse, monkeypatch = env
    clock = FakeClock(datetime(2025, 3, 4, 15, 1, tzinfo=UTC))
    options = LiveOptions(strategy="ml", broker="paper", feed="alpaca", assets=["AAPL"], bars=4, warmup_bars=80,
                          retrain=False, checkpoint_interval=0, run_name="feed", poll_delay=1.0, feed_retries=2)
    with FakeAlpacaData(xnys_tape(), clock) as fake:
        monkeypatch.setenv("APCA_API_DATA_URL", fake.url)
        first = run_live_feed(options, warehouse, register_signals=False, clock=clock)
        assert first.bar_counter == 4 and len(first.bars["AAPL"]) == 84  # 80 warm-up bars + 4 traded
        clock.now_value += timedelta(minutes=30)  # the process is down while six bars close
        with caplog.at_level(logging.INFO):
            second = run_live_feed(LiveOptions(**{**options.__dict__, "bars": 8}), warehouse, register_signals=False,
                              clock=clock)
        assert "Resumed from checkpoint at bar_counter=4" in caplog.text
        assert second.bar_counter == 12
        stamps = _equity_stamps(warehouse)
        start = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
        assert stamps == [start + k * FIVE for k in range(12)]  # none twice, none skipped
        fake.data_faults = [503] * 10
        clock.now_value += timedelta(minutes=10)
        with pytest.raises(FeedUnavailable, match="alpaca: unreachable after 3 attempts"):
            run_live_feed(options, warehouse, register_signals=False, clock=clock)
    saved = SystemStateManager(warehouse / "state" / "system_state.pt").load()
    assert saved["bar_counter"] == 12 and saved["last_bar_timestamp"] == (start + 11 * FIVE).isoformat()
    assert "Feed stopped: alpaca: unreachable" in caplog.text


def test_cli_live_feed_defaults_and_errors(env):
    warehouse, monkeypatch = env
    runner = CliRunner()
    help_text = runner.invoke(main, ["live", "--help"]).output
    assert "Default: simulated" in help_text and "alpaca with --broker alpaca" in help_text
    result = runner.invoke(main, ["live", "--feed", "yfinance", "--speed", "60"])
    assert result.exit_code == 2 and "--speed applies to the simulated replay only" in result.output
    result = runner.invoke(main, ["live", "--feed", "ccxt", "--interval", "1d"])
    assert result.exit_code == 2 and "--feed ccxt serves 1m, 5m, 15m or 1h bars" in result.output
    clock_now = datetime(2025, 3, 4, 16, 0, tzinfo=UTC)
    with FakeAlpacaData(xnys_tape(), FakeClock(clock_now)) as fake:
        monkeypatch.setenv("APCA_API_DATA_URL", fake.url)
        result = runner.invoke(main, ["live", "--feed", "alpaca", "--assets", "ZZZZ", "--strategy", "ml",
                                      "--no-retrain", "--run-name", "feed"])
    assert result.exit_code == 1
    assert "feed alpaca stopped: alpaca: no 5m bars for ZZZZ" in result.output and "state saved" in result.output
    assert SystemStateManager(warehouse / "state" / "system_state.pt").load()["bar_counter"] == 0


def test_broker_alpaca_reads_alpaca_bars_by_default(env):
    warehouse, monkeypatch = env
    clock = FakeClock(datetime(2025, 3, 4, 15, 1, tzinfo=UTC))
    options = LiveOptions(strategy="ml", broker="alpaca", assets=["AAPL"], bars=3, warmup_bars=60, retrain=False,
                          checkpoint_interval=0, run_name="feed", poll_delay=1.0)
    with FakeAlpacaData(xnys_tape(), clock) as alpaca:  # the broker and its market data on one server
        monkeypatch.setenv("APCA_API_BASE_URL", alpaca.url)
        monkeypatch.setenv("APCA_API_DATA_URL", alpaca.url)
        trainer = run_live_feed(options, warehouse, register_signals=False, clock=clock)
    assert trainer.bar_counter == 3 and trainer.last_timestamp == datetime(2025, 3, 4, 15, 10, tzinfo=UTC)
    assert {path for path, _ in alpaca.data_requests} == {"/v2/stocks/bars"}
    assert _equity_stamps(warehouse) == [datetime(2025, 3, 4, 15, 0, tzinfo=UTC) + k * FIVE for k in range(3)]

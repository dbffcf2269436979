"""`quant train`: help, and clear errors before anything is trained or written."""

from __future__ import annotations

import re

from click.testing import CliRunner

from quant_assets.cli import main
from tests.quant_assets.test_live_cli import warehouse  # noqa: F401  (WAREHOUSE_DIR in tmp_path, logging undone)


def test_help_says_what_is_materialized(warehouse) -> None:
    out = CliRunner().invoke(main, ["train", "--help"]).output
    assert "model_checkpoints" in out and "ppo" in out and "--source" in out and "champion" in out


def test_unknown_model_and_bad_interval_are_refused(warehouse) -> None:
    result = CliRunner().invoke(main, ["train", "--model", "gru"])
    assert result.exit_code == 2 and "'gru' is not one of" in result.output
    result = CliRunner().invoke(main, ["train", "--interval", "7x"])
    assert result.exit_code == 2 and "interval must look like 5m, 1h or 1d" in result.output


def test_too_few_bars_names_the_symbol_and_writes_nothing(warehouse) -> None:
    result = CliRunner().invoke(main, ["train", "--model", "lstm", "--bars", "200", "--seq-len", "150", "--epochs", "1"])
    assert result.exit_code == 1
    assert re.search(r"failed: live_lstm: AAPL: \d+ bars after the features' warm-up are too few for seq_len=150: "
                     r"need at least 244", result.output)
    assert not (warehouse / "models").exists() and not (warehouse / "mlruns").exists()

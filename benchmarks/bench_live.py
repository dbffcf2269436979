"""Benchmark: the live loop, bar by bar, on CPU: SelfTrainer with the four forecasters + ensemble.

    python benchmarks/bench_live.py [--bars 10000] [--baseline-bars 1000] [--seq-len 30]

Replays 5-minute bars of one symbol through ``SelfTrainer.process_bar`` (incremental features with
the streaming BOCPD of the retrain trigger,
DecoderTransformer, ITransformer, AttentionLSTM and MomentumTransformer at the live loop's sizes,
EnsembleStrategy, RiskManager, PositionSizer, PaperExecutor, checkpoint every 1,000 bars to a
temporary folder, no retraining): bars/s and process_bar p50/p99. Target: >= 200 bars/s (a year of
5-minute bars in under two minutes). Baseline in the same run: the same loop whose features are
recomputed from the last 200 bars on every bar (what calling a batch pipeline's transform per bar
costs); the ratio is printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_assets.live_runner import FORECASTERS, bar_groups, build_strategy, new_model  # noqa: E402
from quant_lib.execution import PaperExecutor  # noqa: E402
from quant_lib.live import IncrementalBarFeatures, LiveConfig, SelfTrainer, synthetic_bars  # noqa: E402
from quant_resources.state import SystemStateManager  # noqa: E402


class RecomputedFeatures(IncrementalBarFeatures):
    """Baseline: every bar recomputes the features from the last ``window`` bars of the symbol."""

    def __init__(self, window: int = 200) -> None:
        super().__init__()
        self.window = window
        self.history: dict[str, list[dict]] = {}

    def update(self, symbol, bar):
        import polars as pl

        rows = self.history.setdefault(symbol, [])
        rows.append(bar)
        del rows[:-self.window]
        features, _ = self.training_set(pl.DataFrame(rows))
        return features[-1] if len(features) else None


def run(n_bars: int, seq_len: int, features, folder: Path) -> tuple[float, np.ndarray]:
    models = {name: new_model(name, seq_len, seed=i) for i, name in enumerate(FORECASTERS)}
    trainer = SelfTrainer(
        models, build_strategy("ensemble", models), PaperExecutor(), features=features,
        state_store=SystemStateManager(folder / "state.pt"),
        config=LiveConfig(retrain_enabled=False, checkpoint_interval=1_000, close_on_shutdown=False),
        register_signals=False,
    )
    trainer.start()
    groups = bar_groups(synthetic_bars(["AAPL"], n_bars=n_bars, seed=3))
    latencies = np.empty(len(groups))
    started = time.perf_counter()
    for i, group in enumerate(groups):
        t0 = time.perf_counter()
        trainer.process_bar(group)
        latencies[i] = time.perf_counter() - t0
    elapsed = time.perf_counter() - started
    trainer.shutdown()
    return len(groups) / elapsed, latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--baseline-bars", type=int, default=1_000)
    parser.add_argument("--seq-len", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        rate, latencies = run(args.bars, args.seq_len, IncrementalBarFeatures(), Path(scratch) / "live")
        base_rate, base_latencies = run(args.baseline_bars, args.seq_len, RecomputedFeatures(), Path(scratch) / "base")
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
    b50, b99 = np.percentile(base_latencies, [50, 99]) * 1e3
    print(f"SelfTrainer, 4 forecasters + ensemble, {args.bars} bars (seq_len {args.seq_len}, 1 thread):")
    print(f"  incremental features : {rate:8.1f} bars/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    print(f"  recomputed per bar   : {base_rate:8.1f} bars/s  p50 {b50:6.2f} ms  p99 {b99:6.2f} ms ({args.baseline_bars} bars)")
    print(f"  speed-up {rate / base_rate:.1f}x; target >= 200 bars/s: {'met' if rate >= 200 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

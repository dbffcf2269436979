"""Benchmark: the four forecasting nets on CPU at seed 004's shape (seq_len 60, 50 features, 5 outputs).

For each architecture at its default (small) sizes: parameters, training throughput (samples/s,
batch 64, AdamW, one thread per `--threads`) and single-window inference latency (p50, p99 over
`--calls` calls, eval mode, no grad). Target: the four together predict one window in < 5 ms p50.
Run: `python benchmarks/bench_models.py [--threads 1] [--calls 300]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from quant_lib.models import MODEL_NAMES, Trainer, build_model, default_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(64, 60, 50), torch.randn(64, 5) * 0.01
    window = torch.randn(1, 60, 50)
    models, total = {}, []
    print(f"{'model':13s} {'params':>8s} {'train samples/s':>16s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name in MODEL_NAMES:
        model = build_model(name, n_features=50, seq_len=60, forecast_horizon=1 if name == "momentum" else 5)
        trainer = Trainer(model, default_loss(model))
        target = y[:, :1] if name == "momentum" else y
        trainer._train_step(x, target)
        t = time.perf_counter()
        for _ in range(args.steps):
            trainer._train_step(x, target)
        throughput = args.steps * len(x) / (time.perf_counter() - t)
        model.eval()
        models[name] = model
        lat = []
        with torch.no_grad():
            for _ in range(args.calls):
                t = time.perf_counter()
                model(window)
                lat.append((time.perf_counter() - t) * 1e3)
        print(f"{name:13s} {model.count_parameters():8,d} {throughput:16,.0f} {np.percentile(lat, 50):8.2f} {np.percentile(lat, 99):8.2f}")
    with torch.no_grad():
        for _ in range(args.calls):
            t = time.perf_counter()
            for model in models.values():
                model(window)
            total.append((time.perf_counter() - t) * 1e3)
    p50 = float(np.percentile(total, 50))
    print(f"all four, one window: p50 {p50:.2f} ms, p99 {np.percentile(total, 99):.2f} ms (target p50 < 5 ms: {'met' if p50 < 5 else 'NOT met'})")


if __name__ == "__main__":
    main()

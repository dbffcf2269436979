"""Wiring of the `quant train / live / backtest` commands: bars, models, strategy, broker, state, ledger.

The loop itself is ``quant_lib.live.SelfTrainer``; this module only builds its collaborators from
command-line options and the platform settings. Bars come from a feed (``build_feed``): the
seeded simulated tape (``quant_lib.live.synthetic_bars``, replayed; a restart replays the same bars
and resumes after the last one it processed) or a real provider polled for closed bars
(``quant_resources.feeds``: Alpaca, yfinance, ccxt).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quant_lib.live.bars import bar_groups
from quant_resources.atomic import atomic_write_bytes

__all__ = ["FORECASTERS", "LiveOptions", "bar_groups", "build_self_trainer", "run_live"]


logger = logging.getLogger("quant.live")

FORECASTERS = ("transformer", "itransformer", "lstm", "momentum")
SMALL_NETS = {
    "transformer": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "dropout": 0.0},
    "itransformer": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "dropout": 0.0},
    "lstm": {"hidden_size": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.0},
    "momentum": {"hidden_size": 16, "n_heads": 2, "dropout": 0.0},
}
"""Net sizes for the live loop on CPU (benchmarks/bench_live.py measures them)."""


def parse_interval(text: str) -> tuple[timedelta, int]:
    """"5m" / "1h" / "1d" -> (bar length, bars per 6.5-hour session; 1 for daily bars)."""
    match = re.fullmatch(r"(\d+)\s*(m|h|d)", text.strip().lower())
    if not match:
        raise ValueError(f"interval must look like 5m, 1h or 1d, got {text!r}")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "d":
        return timedelta(days=n), 1
    length = timedelta(minutes=n) if unit == "m" else timedelta(hours=n)
    return length, max(int(timedelta(hours=6.5) / length), 1)


def replay_bars(assets: list[str], interval: str, n_bars: int, seed: int, start: date | None = None,
                end: date | None = None) -> pl.DataFrame:
    """The seeded simulated tape: ``n_bars`` bars from 2025-01-02, or from ``start`` through ``end``
    (weekday sessions opening 14:30 UTC) when they are given."""
    from quant_lib.live import synthetic_bars

    length, per_day = parse_interval(interval)
    first = datetime.combine(start or date(2025, 1, 2), time(14, 30), tzinfo=timezone.utc)
    if first.weekday() >= 5:
        raise ValueError(f"start {start} is a weekend day; give a weekday")
    if start is not None and end is not None:
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        weekdays = int(np.busday_count(start, end + timedelta(days=1)))
        n_bars = max(weekdays, 1) * per_day
    return synthetic_bars(assets, n_bars=n_bars, seed=seed, interval=length, bars_per_day=per_day, start=first)


def model_registry(warehouse: Path) -> Any:
    """The model registry under ``warehouse/mlruns`` (or MLFLOW_TRACKING_URI); None when nothing
    was ever registered there (answered without importing mlflow)."""
    import os

    from quant_resources.model_registry import ModelRegistryResource

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bar per checkpoint read
    registry = ModelRegistryResource(root_dir=str(Path(warehouse) / "mlruns"),
                                     tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None).get()
    return registry if registry.store_exists() else None


def trained_checkpoint(registry: Any, name: str) -> tuple[bytes, Any] | None:
    """Checkpoint bytes and version of the live net ``live_<name>`` that `quant train` (the
    `model_checkpoints` asset) registered: the champion, else the latest version (a challenger
    that did not pass the promotion gate, warned); None when there is none."""
    registered = f"live_{name}"
    version = registry.get(registered, "champion")
    if version is None:
        version = registry.get(registered, "challenger")
        if version is None:
            return None
        logger.warning("%s has no champion (no version passed the promotion gate); using the latest version %d "
                       "(week %s, not promoted)", registered, version.version, version.tags.get("week"))
    return registry.load_artifact(registered, version.version, "checkpoint.pt"), version


def new_model(name: str, seq_len: int, seed: int) -> Any:
    """A fresh seeded net of ``SMALL_NETS`` size over the live features (horizon 5; momentum 1)."""
    import torch

    from quant_lib.live import IncrementalBarFeatures
    from quant_lib.models import build_model

    torch.manual_seed(seed)
    horizon = 1 if name == "momentum" else 5
    return build_model(name, n_features=IncrementalBarFeatures.n_features, seq_len=seq_len, forecast_horizon=horizon,
                       **SMALL_NETS[name])


def build_models(names: list[str], warehouse: Path, seq_len: int, seed: int, interval: str | None = None) -> dict[str, Any]:
    """The live nets registered by `quant train` (``trained_checkpoint``), else fresh seeded nets (warned)."""
    from quant_lib.live import IncrementalBarFeatures
    from quant_lib.models import BaseModel

    registry, models = model_registry(warehouse), {}
    for name in names:
        found = trained_checkpoint(registry, name) if registry is not None else None
        if found is not None:
            data, version = found
            models[name], _ = BaseModel.load(data, feature_names=IncrementalBarFeatures.feature_names)
            trained_on = version.params.get("interval")
            logger.info("Loaded live_%s version %d (week %s, %s bars)", name, version.version, version.tags.get("week"), trained_on)
            if interval and trained_on and trained_on != interval:
                logger.warning("live_%s was trained on %s bars; this run trades %s bars", name, trained_on, interval)
            continue
        models[name] = new_model(name, seq_len, seed + len(models))
        logger.warning("No trained live_%s in the model registry; using an untrained net (run `quant train --model %s` first)",
                       name, name)
    return models


def build_strategy(kind: str, models: dict[str, Any]) -> Any:
    from quant_lib.strategies import EnsembleStrategy, MLSignalStrategy

    def member(name: str) -> MLSignalStrategy:
        momentum = name == "momentum"
        return MLSignalStrategy(kind="position" if momentum else "return", confidence_scale=0.5 if momentum else 0.002,
                                confirmation_bars=2, name=name)

    if kind == "ensemble":
        return EnsembleStrategy({name: member(name) for name in models})
    if kind == "ml":
        return MLSignalStrategy(confidence_scale=0.002, confirmation_bars=2)
    raise ValueError(f"strategy must be 'ensemble' or 'ml' here, got {kind!r}")


@dataclass
class LiveOptions:
    strategy: str = "ensemble"
    broker: str = "paper"
    assets: list[str] = field(default_factory=lambda: ["AAPL"])
    interval: str = "5m"
    speed: float = 0.0
    bars: int | None = 2_000
    """Replay: bars of the tape; a real feed: stop after this many new bars (None: run until stopped)."""
    feed: str | None = None
    warmup_bars: int = 200
    poll_delay: float = 2.0
    feed_retries: int = 5
    max_catchup_days: float = 5.0
    seed: int = 7
    capital: float = 100_000.0
    seq_len: int = 30
    checkpoint_interval: int = 50
    retrain: bool = True
    retrain_interval: int = 500
    retrain_min_samples: int = 200
    sharpe_threshold: float = 0.0
    max_drawdown: float = 0.15
    daily_loss_limit: float = 0.03
    close_on_exit: bool | None = None
    allow_mismatch: bool = False
    run_name: str = "live"
    allow_short: bool = False
    unfilled_at_close: str = "cancel"


def build_self_trainer(options: LiveOptions, warehouse: Path, models: dict[str, Any] | None = None,
                       state_root: Path | None = None) -> Any:
    """SelfTrainer for ``options``: models from ``warehouse``, state and ledger under ``state_root``
    (default ``warehouse``: state/system_state.pt and ledger/<run_name>/)."""
    from quant_lib.execution import PaperExecutor
    from quant_lib.live import LiveConfig, SelfTrainer
    from quant_lib.risk.limits import RiskLimits, RiskManager
    from quant_resources.ledger import FileLedgerSink
    from quant_resources.state import SystemStateManager

    length, per_day = parse_interval(options.interval)
    names = list(FORECASTERS) if options.strategy == "ensemble" else ["transformer"]
    models = models if models is not None else build_models(names, warehouse, options.seq_len, options.seed, options.interval)
    if options.broker == "paper":
        executor = PaperExecutor(initial_capital=options.capital)
    elif options.broker == "alpaca":
        from quant_resources.brokers.alpaca import LiveExecutor

        executor = LiveExecutor(allow_mismatch=options.allow_mismatch, unfilled_at_close=options.unfilled_at_close)
        executor.connect()
    else:
        raise ValueError(f"broker must be 'paper' or 'alpaca', got {options.broker!r}")
    close = options.close_on_exit if options.close_on_exit is not None else options.broker == "paper"
    config = LiveConfig(
        initial_capital=options.capital, periods_per_year=252 * per_day, retrain_enabled=options.retrain,
        retrain_interval=options.retrain_interval, retrain_min_samples=options.retrain_min_samples,
        sharpe_threshold=options.sharpe_threshold, checkpoint_interval=options.checkpoint_interval,
        close_on_shutdown=close, strategy_tag=f"{options.run_name}|{options.strategy}", seed=options.seed,
        allow_short=options.allow_short,
    )
    limits = RiskLimits(max_drawdown=options.max_drawdown, daily_loss_limit=options.daily_loss_limit)
    return SelfTrainer(
        models, build_strategy(options.strategy, models), executor, risk_manager=RiskManager(limits), config=config,
        state_store=SystemStateManager(Path(state_root or warehouse) / "state" / "system_state.pt"),
        ledger_sink=FileLedgerSink(Path(state_root or warehouse) / "ledger", options.run_name),
    )


def run_live(options: LiveOptions, warehouse: Path, state_root: Path | None = None, register_signals: bool = True) -> Any:
    """Build, start and run the loop over the feed ``options.feed`` (``run_live_feed``), then
    shut down (close where configured, save state). Returns the trainer."""
    return run_live_feed(options, warehouse, state_root, register_signals)


def default_feed(broker: str) -> str:
    """The bar feed when ``--feed`` is not given: the broker's own market data."""
    return "alpaca" if broker == "alpaca" else "simulated"


def build_feed(options: LiveOptions, clock: Any = None, source: Any = None) -> Any:
    """``options.feed`` (default ``default_feed``): the seeded replay tape or a polling provider feed."""
    from quant_lib.live.feed import ReplayFeed
    from quant_resources.feeds import SystemClock, build_bar_feed
    from quant_resources.settings import get_settings

    kind = options.feed or default_feed(options.broker)
    if kind == "simulated":
        if options.broker != "paper":
            logger.warning("Trading on %s with the simulated replay tape (--feed simulated)", options.broker)
        tape = replay_bars(options.assets, options.interval, options.bars or 2_000, options.seed)
        return ReplayFeed(tape, parse_interval(options.interval)[0], options.speed, clock or SystemClock())
    settings = get_settings()
    feed = build_bar_feed(kind, options.assets, options.interval, clock=clock, source=source,
                          market_calendar=settings.market_calendar, ccxt_exchange=settings.ccxt_exchange,
                          poll_delay=options.poll_delay, max_retries=options.feed_retries,
                          max_catchup_days=options.max_catchup_days)
    logger.info("Feed %s: %s %s bars as each closes (%s sessions)", feed.name, ",".join(options.assets),
                options.interval, feed.calendar)
    return feed


def feed_bars(trainer: Any, feed: Any, limit: int | None = None) -> int:
    """Process every group ``feed`` yields (at most ``limit`` new bars); returns how many."""
    processed = 0
    for group in feed:
        result = trainer.process_bar(group)
        if result.get("skipped"):
            continue
        processed += 1
        if result["bar_counter"] % 100 == 0:
            logger.info("bar %d | %s | equity %.2f | weights %s", result["bar_counter"], result["timestamp"],
                        result["equity"], getattr(trainer.strategy, "weights", {}))
        if limit and processed >= limit:
            break
    return processed


def run_live_feed(options: LiveOptions, warehouse: Path, state_root: Path | None = None, register_signals: bool = True,
                  clock: Any = None, source: Any = None) -> Any:
    """Build, start and run the loop over the feed, then shut down (close where configured, save
    state). A fresh start on a real feed warms the buffers on ``warmup_bars`` past bars; a restart
    resumes after the state's last bar (the bars closed meanwhile are processed, none skipped).
    A ``FeedError`` (unknown symbol, provider unreachable after retries) saves state and is
    re-raised. Returns the trainer."""
    from quant_lib.live.feed import FeedError, ReplayFeed

    feed = build_feed(options, clock, source)
    trainer = build_self_trainer(options, warehouse, state_root=state_root)
    trainer.register_signals = register_signals
    trainer.start()
    try:
        fresh = trainer.last_timestamp is None
        if fresh:
            trainer.warm_up(feed.history(options.warmup_bars))
        feed.resume_after(trainer.last_timestamp)
        if not fresh:
            feed.history(0)  # names an unknown symbol before trading resumes
        feed_bars(trainer, feed, None if isinstance(feed, ReplayFeed) else options.bars)
    except FeedError as error:
        logger.error("Feed stopped: %s; saving state at bar_counter=%d", error, trainer.bar_counter)
        trainer.shutdown()
        raise
    stats = getattr(feed, "stats", None)
    if stats is not None:
        logger.info("feed %s: %d bars in %d groups, %d symbol-bars absent from their group, %d duplicates, "
                    "%d outside sessions, %d still forming (refetched), %d late, %d gaps (%d bars missing), %d retries",
                    feed.name, stats.bars, stats.groups, stats.absent, stats.duplicates, stats.outside, stats.partial,
                    stats.late, stats.gaps, stats.missing_bars, stats.retries)
    trainer.shutdown()
    return trainer


BACKTEST_HEADLINES = ("total_return", "sharpe_ratio", "max_drawdown", "total_trades", "fills")


def replay_backtest(options: LiveOptions, groups: list, warehouse: Path, advance=None) -> tuple[dict[str, float], Path]:
    """Replay bar `groups` through a fresh SelfTrainer (state in a scratch folder, no retrain) with
    the paper broker, as `quant live` would trade them; write the six-panel dashboard under
    `warehouse/reports/`. Returns the headline metrics and the dashboard's path."""
    import tempfile

    from quant_lib.live.replay import run_bar_backtest
    from quant_lib.reporting.tearsheet import build_tearsheet

    with tempfile.TemporaryDirectory() as scratch:
        trainer = build_self_trainer(options, warehouse, state_root=Path(scratch))
        trainer.register_signals = False
        trainer.start()
        metrics, daily, _ = run_bar_backtest(trainer, groups, options.capital, advance)
    shown = {k: metrics[k] for k in BACKTEST_HEADLINES}
    assets = "_".join(options.assets)
    html = build_tearsheet(daily, None, f"{options.strategy} backtest: {','.join(options.assets)}", shown, rolling_window=5)
    path = warehouse / "reports" / f"backtest_{options.strategy}_{assets}.html"
    atomic_write_bytes(path, html.encode())
    return shown, path


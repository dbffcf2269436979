"""The live loop: SelfTrainer over injected features, models, strategy, risk, broker and state store.

Importing this package does not import torch; predictions and retraining import it when used.
"""

from quant_lib.live.bars import bar_groups, normalise_bars, synthetic_bars
from quant_lib.live.config import LiveConfig
from quant_lib.live.features import IncrementalBarFeatures, PipelineBarFeatures
from quant_lib.live.feed import BarFeed, BarSource, FeedError, FeedUnavailable, PollingBarFeed, ReplayFeed
from quant_lib.live.performance import PerformanceTracker, sharpe_ratio
from quant_lib.live.protocols import BarFeatures, Executor, LedgerSink, StateStore
from quant_lib.live.self_trainer import SelfTrainer

__all__ = [
    "BarFeatures",
    "BarFeed",
    "BarSource",
    "FeedError",
    "FeedUnavailable",
    "PollingBarFeed",
    "ReplayFeed",
    "Executor",
    "IncrementalBarFeatures",
    "LedgerSink",
    "LiveConfig",
    "PerformanceTracker",
    "PipelineBarFeatures",
    "SelfTrainer",
    "StateStore",
    "bar_groups",
    "normalise_bars",
    "sharpe_ratio",
    "synthetic_bars",
]

"""Labels for meta-labeling: events, triple-barrier labels and sample weights (AFML ch. 2-4)."""

from quant_lib.labeling.events import cusum_events, daily_volatility, ranked_bet_events
from quant_lib.labeling.triple_barrier import LABEL_COLUMNS, triple_barrier
from quant_lib.labeling.weights import average_uniqueness, sample_weights, time_decay

__all__ = [
    "LABEL_COLUMNS",
    "average_uniqueness",
    "cusum_events",
    "daily_volatility",
    "ranked_bet_events",
    "sample_weights",
    "time_decay",
    "triple_barrier",
]

"""The promotion gate: may a newly trained model (challenger) replace the champion?

Rule (losses are out-of-sample, lower is better, see ``walk_forward``): promote iff
1. the challenger's loss is finite and below the naive forecast's loss on the same test block by
   at least ``naive_margin`` (relative): ``loss < (1 - naive_margin) * naive_loss`` when the naive
   loss is positive (``loss < naive_loss - naive_margin * |naive_loss|`` in general), and
2. the improvement over the naive forecast is not noise: its t-statistic (``improvement_tstat``,
   Diebold-Mariano with Newey-West variance) is at least ``min_tstat`` (default -inf: off), and
3. there is no champion, or the challenger is not worse than the champion by more than
   ``champion_margin``: ``loss <= champion_loss + champion_margin * |champion_loss|``.
A NaN/Inf loss, or a missing naive loss, never passes; nor does a NaN t-statistic when
``min_tstat`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    loss: float
    naive_loss: float
    champion_loss: float | None


def promotion_decision(
    loss: float,
    naive_loss: float,
    champion_loss: float | None = None,
    naive_margin: float = 0.0,
    champion_margin: float = 0.0,
    tstat: float | None = None,
    min_tstat: float = -math.inf,
) -> PromotionDecision:
    def decide(ok: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(ok, reason, loss, naive_loss, champion_loss)

    if not (math.isfinite(loss) and math.isfinite(naive_loss)):
        return decide(False, f"non-finite out-of-sample loss ({loss}) or naive loss ({naive_loss})")
    bar = naive_loss - naive_margin * abs(naive_loss)
    if not loss < bar:
        return decide(False, f"loss {loss:.6g} does not beat the naive forecast's {naive_loss:.6g} (margin {naive_margin:.1%})")
    if min_tstat > -math.inf and not (tstat is not None and math.isfinite(tstat) and tstat >= min_tstat):
        return decide(False, f"improvement over the naive forecast is not significant: t = {'none' if tstat is None else format(tstat, '.2f')} < {min_tstat:g}")
    if champion_loss is not None and math.isfinite(champion_loss):
        limit = champion_loss + champion_margin * abs(champion_loss)
        if loss > limit:
            return decide(False, f"loss {loss:.6g} is worse than the champion's {champion_loss:.6g} beyond the {champion_margin:.1%} margin")
        return decide(True, f"loss {loss:.6g} beats naive {naive_loss:.6g} and is within {champion_margin:.1%} of the champion's {champion_loss:.6g}")
    return decide(True, f"loss {loss:.6g} beats naive {naive_loss:.6g}; no champion yet")

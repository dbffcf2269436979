"""Post-processing of long-only weights: per-position and per-sector caps with redistribution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_TOL = 1e-12


def cap_weights(weights: np.ndarray, max_weight: float | np.ndarray) -> np.ndarray:
    """Cap long-only weights at `max_weight` (scalar or per asset) keeping their sum (water-filling).

    Repeatedly clips every weight above its cap and hands the excess to the uncapped assets in
    proportion to their weights (equally when they are all zero), so capped weights stay at their
    cap and the sum is unchanged. Raises ValueError for negative weights or when the caps cannot hold
    the total (sum of caps < sum of weights).
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1).copy()
    if not np.isfinite(w).all():
        raise ValueError("weights contain NaN/inf")
    if (w < -_TOL).any():
        raise ValueError(f"cap_weights needs long-only weights; negative at {np.flatnonzero(w < -_TOL).tolist()[:10]}")
    w = np.clip(w, 0.0, None)
    caps = np.broadcast_to(np.asarray(max_weight, dtype=np.float64), w.shape)
    if (caps < 0).any() or np.isnan(caps).any():
        raise ValueError("caps must be non-negative")
    total = w.sum()
    if caps.sum() < total - 1e-9:
        raise ValueError(f"caps sum to {caps.sum():.6g}, less than the weights' total {total:.6g}")
    capped = np.zeros(w.shape, dtype=bool)
    for _ in range(w.size + 1):
        over = w > caps + _TOL
        if not over.any():
            break
        capped |= over
        excess = (w[over] - caps[over]).sum()
        w[over] = caps[over]
        receivers = ~capped & (w > 0)
        if not receivers.any():
            receivers = ~capped & (w < caps)
            w[receivers] += excess / receivers.sum()
        else:
            w[receivers] += excess * w[receivers] / w[receivers].sum()
    return np.minimum(w, caps)


def apply_sector_caps(
    weights: np.ndarray,
    sectors: Sequence[str] | np.ndarray,
    sector_caps: Mapping[str, float] | float,
) -> np.ndarray:
    """Cap each sector's total weight and redistribute the excess to the other sectors.

    Sector totals are water-filled with `cap_weights` (caps: one float for every sector, or a
    mapping sector -> cap; sectors not in the mapping are uncapped); the weights inside a sector are
    scaled by new_total / old_total, so their proportions are kept.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    labels = np.asarray(sectors).reshape(-1)
    if labels.shape[0] != w.shape[0]:
        raise ValueError(f"sectors has {labels.shape[0]} entries for {w.shape[0]} weights")
    names, inverse = np.unique(labels, return_inverse=True)
    totals = np.bincount(inverse, weights=w, minlength=names.size)
    if isinstance(sector_caps, Mapping):
        unknown = sorted(set(sector_caps) - set(names.tolist()))
        if unknown:
            raise ValueError(f"sector_caps names sectors that no asset has: {unknown}")
        caps = np.array([sector_caps.get(name, np.inf) for name in names.tolist()], dtype=np.float64)
    else:
        caps = np.full(names.size, float(sector_caps))
    new_totals = cap_weights(totals, caps)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(totals > 0, new_totals / totals, 0.0)
    return w * scale[inverse]


def apply_weight_caps(
    weights: np.ndarray,
    max_weight: float | None = None,
    sectors: Sequence[str] | np.ndarray | None = None,
    sector_caps: Mapping[str, float] | float | None = None,
    max_iter: int = 100,
) -> np.ndarray:
    """Position caps and sector caps together: alternate `cap_weights` and `apply_sector_caps` until
    both hold (to 1e-10). Raises ValueError when they cannot both hold after `max_iter` rounds."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1).copy()
    use_sectors = sectors is not None and sector_caps is not None
    for _ in range(max_iter):
        if max_weight is not None:
            w = cap_weights(w, max_weight)
        if not use_sectors:
            return w
        w = apply_sector_caps(w, sectors, sector_caps)
        if max_weight is None or (w <= max_weight + 1e-10).all():
            return w
    raise ValueError("position and sector caps could not both be met; loosen one of them")

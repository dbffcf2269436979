"""Pick the torch device: CUDA > MPS > CPU, or the one a setting names."""

from __future__ import annotations

import torch


def resolve_device(preference: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA if available, else MPS, else CPU; otherwise the device named
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), refused if it is not available."""
    if isinstance(preference, torch.device):
        return preference
    name = (preference or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} requested but MPS is not available")
    return device

"""BaseModel: the checkpoint contract every forecasting net shares (seed 004 §4.4, §7).

A checkpoint is a plain dict serialized with ``torch.save`` into bytes::

    {"format": 1, "architecture": "transformer", "config": {constructor kwargs},
     "feature_names": [...] | None, "state_dict": {...}, "optimizer_state": {...} | None,
     "epoch": int, "best_val_loss": float | None, "extra": {...}}

``quant_lib`` never touches files: ``save`` returns the bytes or hands them to a callback
(the model store in ``quant_resources`` writes them atomically). ``load`` refuses a checkpoint
of another architecture or feature set with a ``CheckpointMismatchError`` naming both sides.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

CHECKPOINT_FORMAT = 1
_ARCHITECTURES: dict[str, type[BaseModel]] = {}

T = TypeVar("T")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model asked for (architecture, feature set or format)."""


class BaseModel(nn.Module):
    """An ``nn.Module`` that remembers its constructor kwargs so it can be saved and rebuilt.

    Subclasses set ``architecture`` (the registry name) and call ``super().__init__(**config)``
    with every constructor keyword argument.
    """

    architecture: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.architecture:
            _ARCHITECTURES[cls.architecture] = cls

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(config)

    @property
    def n_features(self) -> int:
        return int(self.config["n_features"])

    def count_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def checkpoint(
        self,
        optimizer: torch.optim.Optimizer | None = None,
        epoch: int = 0,
        best_val_loss: float | None = None,
        feature_names: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The checkpoint dict (weights copied to CPU)."""
        if feature_names is not None and len(feature_names) != self.n_features:
            raise ValueError(f"{len(feature_names)} feature names for a model of n_features={self.n_features}")
        return {
            "format": CHECKPOINT_FORMAT,
            "architecture": self.architecture,
            "config": dict(self.config),
            "feature_names": list(feature_names) if feature_names is not None else None,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
            "epoch": int(epoch),
            "best_val_loss": None if best_val_loss is None else float(best_val_loss),
            "extra": dict(extra or {}),
        }

    def save(
        self,
        target: Callable[[bytes], T] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        epoch: int = 0,
        best_val_loss: float | None = None,
        feature_names: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bytes | T:
        """Serialize the checkpoint; return the bytes, or ``target(bytes)`` when a callback is given."""
        data = checkpoint_to_bytes(self.checkpoint(optimizer, epoch, best_val_loss, feature_names, extra))
        return data if target is None else target(data)

    @classmethod
    def load(
        cls,
        source: bytes | Callable[[], bytes],
        device: str | torch.device | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> tuple[BaseModel, dict[str, Any]]:
        """Rebuild the model from checkpoint bytes (or a callable returning them), in eval mode.

        Called on a subclass, a checkpoint of another architecture is refused; with
        ``feature_names``, a checkpoint trained on another feature set (names or order) is refused.
        """
        data = source() if callable(source) else source
        ckpt = checkpoint_from_bytes(data)
        arch = ckpt.get("architecture")
        if cls.architecture and arch != cls.architecture:
            raise CheckpointMismatchError(
                f"checkpoint is a {arch!r} model, not a {cls.architecture!r} ({cls.__name__})"
            )
        if arch not in _ARCHITECTURES:
            raise CheckpointMismatchError(f"unknown architecture {arch!r}; known: {sorted(_ARCHITECTURES)}")
        check_feature_names(ckpt.get("feature_names"), feature_names)
        model = _ARCHITECTURES[arch](**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        model.to(device or "cpu").eval()
        return model, ckpt


def check_feature_names(saved: Sequence[str] | None, expected: Sequence[str] | None) -> None:
    """Raise ``CheckpointMismatchError`` when the expected feature set differs from the saved one."""
    if expected is None:
        return
    if saved is None:
        raise CheckpointMismatchError("checkpoint records no feature names; cannot check the feature set")
    if list(saved) != list(expected):
        missing = [f for f in saved if f not in set(expected)]
        unexpected = [f for f in expected if f not in set(saved)]
        raise CheckpointMismatchError(
            f"checkpoint feature set differs: {len(saved)} saved vs {len(expected)} given; "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
            + ("" if missing or unexpected else " (same names, different order)")
        )


def checkpoint_to_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    return buffer.getvalue()


def checkpoint_from_bytes(data: bytes) -> dict[str, Any]:
    """Parse checkpoint bytes (``weights_only``: no arbitrary code runs); refuse other formats."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise CheckpointMismatchError("checkpoint is empty or not bytes")
    try:
        ckpt = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt checkpoint
        raise CheckpointMismatchError(f"checkpoint bytes cannot be read: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(
            f"not a quant_lib model checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt)})"
        )
    return ckpt


def architectures() -> dict[str, type[BaseModel]]:
    """Registered architectures by name."""
    return dict(_ARCHITECTURES)

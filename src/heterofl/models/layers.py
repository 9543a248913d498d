"""Building blocks shared by the HeteroFL models: Scaler, the norm factory and masked cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heterofl.errors import HeteroFLError
from heterofl.models.registry import NORMS


class Scaler(nn.Module):
    """Divides activations by the client's rate in training, identity in evaluation (paper section 3.2).

    A submodel of rate r sees roughly r times the fan-in of the global model; scaling by 1/r during
    local training keeps its activations on the global model's scale.
    """

    def __init__(self, rate: float, enabled: bool = True) -> None:
        super().__init__()
        self.rate = float(rate)
        self.enabled = enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.rate if (self.training and self.enabled and self.rate != 1.0) else x

    def extra_repr(self) -> str:
        return f"rate={self.rate}, enabled={self.enabled}"


def make_norm(kind: str, channels: int) -> nn.Module:
    """The reference's norms; ``bn`` is static BN: batch statistics in training, no running buffers."""
    if kind == "bn":
        return nn.BatchNorm2d(channels, momentum=None, track_running_stats=False)
    if kind == "in":
        return nn.GroupNorm(channels, channels)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    if kind == "gn":
        return nn.GroupNorm(4, channels)
    if kind == "none":
        return nn.Identity()
    raise HeteroFLError("norm", f"{kind!r} is unknown", ", ".join(NORMS))


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, label_mask: torch.Tensor | None, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy with logits of classes outside the client's label set set to 0 (spec section 6).

    The reference writes 0, not -inf, so absent classes still add exp(0) to the denominator but get no
    gradient; kept as published. ``label_mask`` is bool, broadcastable to ``logits`` (classes last).
    """
    if label_mask is not None:
        logits = logits.masked_fill(~label_mask, 0.0)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction=reduction)

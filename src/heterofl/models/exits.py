"""Early exits for depth-heterogeneous training (DepthFL, Kim et al., ICLR 2023).

A model with ``stage_exits`` has a small classifier (an *exit*) after each of its stages; a client of depth
level k holds the first k stages and their k exits, at full width. In training the model returns what its
method trains (:data:`EXIT_MODES`): every held exit's logits as a tuple (DepthFL: each exit's cross-entropy
plus mutual self-distillation, :func:`exit_loss`), or only the deepest held exit's (InclusiveFL as in the
DepthFL authors' comparison: the shallower exits are trained only by the clients for which they are the
deepest). In evaluation it returns the ensemble: the mean of its exits' logits, as the DepthFL authors'
code averages them (Flower baselines/depthfl, ``models.test``) before the argmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heterofl.models.layers import make_norm, masked_cross_entropy

EXIT_MODES = ("all", "last")
"""What a model with stage exits returns in training: every held exit (DepthFL) or the deepest (InclusiveFL)."""


class PoolExit(nn.Module):
    """Global average pool, then a linear classifier; with ``norm``, a pre-activation norm and ReLU first (the
    ResNet's own head is n4 -> ReLU -> pool -> linear). DepthFL's code uses deeper bottleneck heads; this is
    the smallest head that gives every stage a classifier."""

    def __init__(self, channels: int, num_classes: int, norm: str | None) -> None:
        super().__init__()
        self.norm = make_norm(norm, channels) if norm is not None else None
        self.linear = nn.Linear(channels, num_classes)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = torch.relu(self.norm(x))
        return self.linear(x.mean(dim=(2, 3)))


def exit_output(logits: list[torch.Tensor], training: bool, mode: str) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """What a staged model returns: see the module docstring."""
    if not training:
        return torch.stack(logits).mean(0)
    return tuple(logits) if mode == "all" else logits[-1]


def prediction_logits(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits a prediction is read from: the output itself, or the mean of several exits' logits."""
    return torch.stack(output).mean(0) if isinstance(output, tuple) else output


def distillation_weight(round_: int, rounds: int) -> float:
    """DepthFL's weight of the self-distillation term in round ``round_`` (1-based): exp(-5 (1 - t)^2), t
    rising linearly from 0 to 1 over the first 30 % of the run. The authors' code ramps over 300 of its
    1,000 rounds; the same share keeps the schedule's shape in shorter runs."""
    ramp = max(1.0, 0.3 * rounds)
    t = min(max(round_ - 1, 0) / ramp, 1.0)
    return float(torch.exp(torch.tensor(-5.0 * (1.0 - t) ** 2, dtype=torch.float64)))


def exit_loss(
    outputs: tuple[torch.Tensor, ...], targets: torch.Tensor, label_mask: torch.Tensor | None, weight: float
) -> torch.Tensor:
    """DepthFL's local loss: for every exit i, its (masked) cross-entropy plus ``weight`` times the mean over
    the other exits j of KL(softmax(z_j) || softmax(z_i)) at temperature 1, z_j held constant (mutual
    self-distillation); summed over the exits. (The authors' code adds 1e-7 to the teacher's probabilities;
    this uses the exact log-probabilities.)"""
    total = outputs[0].new_zeros(())
    count = len(outputs)
    log_probs = [F.log_softmax(z, dim=-1) for z in outputs]
    for i, logits in enumerate(outputs):
        total = total + masked_cross_entropy(logits, targets, label_mask)
        if count == 1 or weight == 0.0:
            continue
        for j in range(count):
            if j != i:
                teacher = log_probs[j].detach()
                kl = (teacher.exp() * (teacher - log_probs[i])).sum(-1).mean()
                total = total + weight * kl / (count - 1)
    return total

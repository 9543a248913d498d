"""Evaluation of the global model and of every smaller submodel (spec section 7).

Global: the whole test set, no label mask. Local: every client's own test split, with its label mask
when the run uses masked cross-entropy, averaged over all clients' samples. The language model reports
loss and perplexity (exp of the token-mean loss).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from heterofl.static_bn import fast_layout
from heterofl.tasks import ImageTask, MaskedLMTask


@torch.no_grad()
def _test_logits(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    model.eval()
    if not batches:
        return torch.empty(0)
    layout = fast_layout(model, batches[0][0].device)
    return torch.cat([model(x.contiguous(memory_format=layout) if x.dim() == 4 else x) for x, _ in batches])


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module,
    task: ImageTask,
    batch_size: int,
    local_indices: torch.Tensor | None,
    local_users: torch.Tensor | None,
    label_mask: torch.Tensor | None,
) -> dict[str, float]:
    """Global and Local loss/accuracy from one forward pass over the test set.

    ``local_indices``/``local_users`` list every (test sample, owning client) pair; ``label_mask`` is the
    (clients, classes) mask applied to Local logits, or None when the run does not mask.
    """
    logits = _test_logits(model, task.test_batches(batch_size))
    targets = task.test_y
    out = {
        "Global-Loss": task.loss(logits, targets, None).item(),
        "Global-Accuracy": 100.0 * (logits.argmax(1) == targets).float().mean().item(),
    }
    if local_indices is not None and len(local_indices) > 0:
        local_logits, local_targets = logits[local_indices], targets[local_indices]
        masks = label_mask[local_users] if label_mask is not None else None
        if masks is not None:
            local_logits = local_logits.masked_fill(~masks, 0.0)
        out["Local-Loss"] = task.loss(local_logits, local_targets, None).item()
        out["Local-Accuracy"] = 100.0 * (local_logits.argmax(1) == local_targets).float().mean().item()
    return out


@torch.no_grad()
def evaluate_language_model(model: nn.Module, task: MaskedLMTask, seed: int = 0) -> dict[str, float]:
    model.eval()
    total, tokens = 0.0, 0
    for inputs, targets in task.test_batches(0, seed):
        total += task.loss(model(inputs), targets, None, reduction="sum").item()
        tokens += targets.numel()
    loss = total / max(tokens, 1)
    return {"Global-Loss": loss, "Global-Perplexity": math.exp(loss)}


def local_pairs(test_indices: tuple[np.ndarray, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten per-client test splits into (sample index, client) pairs, built once per run."""
    users = np.concatenate([np.full(len(ix), u, dtype=np.int64) for u, ix in enumerate(test_indices)] or [[]])
    indices = np.concatenate([np.asarray(ix, dtype=np.int64) for ix in test_indices] or [[]])
    return (
        torch.as_tensor(indices, dtype=torch.long, device=device),
        torch.as_tensor(users, dtype=torch.long, device=device),
    )

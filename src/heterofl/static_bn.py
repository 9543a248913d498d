"""Static batch normalisation (sBN, paper section 3.2; spec section 6).

During federated training BN uses batch statistics only and keeps no running buffers, so clients share
just gamma/beta. Before evaluating a model of any rate, the server computes fresh statistics for exactly
that model with one pass over the training data: cumulative averages of the per-batch mean and unbiased
variance (BatchNorm's ``momentum=None``). Nothing stale from an earlier round or another rate survives.
"""

from __future__ import annotations

import torch
from torch import nn

from heterofl.models.layers import Scaler


def batch_norms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def fit_static_bn(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> nn.Module:
    """Recompute every BN layer's statistics from ``inputs`` and leave the model in eval mode.

    Scalers stay in evaluation mode (identity) during the pass, because that is how the model will be
    evaluated: the statistics must describe the activations the evaluation will see.
    """
    norms = batch_norms(model)
    if norms:
        for norm in norms:
            norm.momentum = None
            norm.track_running_stats = True
            device = norm.weight.device if norm.weight is not None else inputs.device
            norm.register_buffer("running_mean", torch.zeros(norm.num_features, device=device))
            norm.register_buffer("running_var", torch.ones(norm.num_features, device=device))
            norm.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        model.train()
        for module in model.modules():
            if isinstance(module, Scaler):
                module.eval()
        for batch in inputs.split(batch_size):
            model(batch)
    model.eval()
    return model


def drop_static_bn(model: nn.Module) -> nn.Module:
    """Return BN layers to training-time form (no running statistics), as clients use them."""
    for norm in batch_norms(model):
        norm.track_running_stats = False
        norm.running_mean = norm.running_var = norm.num_batches_tracked = None
    return model

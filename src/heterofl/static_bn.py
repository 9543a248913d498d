"""Static batch normalisation (sBN, paper section 3.2; spec section 6).

During federated training BN uses batch statistics only and keeps no running buffers, so clients share
just gamma/beta. Before evaluating a model of any rate, the server computes fresh statistics for exactly
that model with one pass over the training data: cumulative averages of the per-batch mean and unbiased
variance (BatchNorm's ``momentum=None``). Nothing stale from an earlier round or another rate survives.

The pass visits the training set in a shuffled order, as the reference's shuffled data loader does
(HeteroFL, https://arxiv.org/abs/2010.01264, section 3.2 and the original ``stats()``): the statistics are
averages of *per-batch* moments, so batches cut from label-sorted data (MNIST5k is sorted by digit) would
miss the variance between classes.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from heterofl.models.layers import Scaler


def batch_norms(model: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer of any kind (1d, 2d, 3d): each needs static statistics before evaluation."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def fast_layout(model: nn.Module, device: torch.device) -> torch.memory_format:
    """The memory format for large-batch inference: channels_last for image models on the CPU.

    oneDNN's convolutions, batch norm and pooling run about 1.5x faster on NHWC than on NCHW tensors
    on the CPU (measured with benchmarks/round_speed.py); the result is the same up to float rounding.
    Conversion of the model is in place and happens once (parameters keep their layout when loaded).
    """
    if device.type != "cpu" or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return torch.contiguous_format
    if not all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4):
        model.to(memory_format=torch.channels_last)
    return torch.channels_last


def statistics_order(seed: int, count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The shuffled order of the statistics pass: a permutation of ``count`` images fixed by the run's seed.

    Drawn from its own generator, so it leaves the global RNG (and with it the training trajectory) alone;
    fixed per run, so a model evaluated twice gets the same statistics.
    """
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed)).to(device)


@torch.no_grad()
def fit_static_bn(
    model: nn.Module, inputs: torch.Tensor, batch_size: int, order: torch.Tensor | None = None
) -> nn.Module:
    """Recompute every BN layer's statistics from ``inputs`` and leave the model in eval mode.

    Batches are ``inputs[order]`` cut every ``batch_size`` images (``inputs`` as they are when ``order``
    is None). Scalers stay in evaluation mode (identity) during the pass, because that is how the model
    will be evaluated: the statistics must describe the activations the evaluation will see.
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
        layout = fast_layout(model, inputs.device)
        if layout == torch.channels_last:
            for norm in norms:
                if isinstance(norm, nn.BatchNorm2d):
                    norm.forward = partial(_accurate_batch_norm, norm)
        batches = inputs.split(batch_size) if order is None else (inputs[ix] for ix in order.split(batch_size))
        try:
            for batch in batches:
                model(batch.contiguous(memory_format=layout) if batch.dim() == 4 else batch)
        finally:
            for norm in norms:
                norm.__dict__.pop("forward", None)
    model.eval()
    return model


def _accurate_batch_norm(norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Training-mode BN with the ``momentum=None`` running-statistics update, for NHWC inputs on the CPU.

    oneDNN's NHWC batch norm accumulates the batch moments naively (relative error ~1e-4 in the variance
    of a 1000-image MNIST batch, against ~1e-7 for NCHW). Two passes over the contiguous (N*H*W, C) view
    (the mean by PyTorch's cascaded sum, then the sum of squared deviations) are as accurate (~2e-7) and
    4.7x faster than ``torch.var_mean`` (Welford, a division per element) on a cache-sized batch
    (``benchmarks/static_bn_batch.py``). Same arithmetic as ``nn.BatchNorm2d`` otherwise. Only 4-D
    (N, C, H, W) inputs take this path; anything else goes to the layer's own forward.
    """
    if x.dim() != 4:
        return type(norm).forward(norm, x)
    flat = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    count = flat.shape[0]
    mean = flat.mean(0)
    var = (flat - mean).square_().sum(0).div_(count - 1)  # nan for a single value, as torch.var_mean
    return normalize_with_moments(norm, x, mean, var, count)


def normalize_with_moments(
    norm: nn.BatchNorm2d, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, count: int
) -> torch.Tensor:
    """Fold a batch's mean and unbiased variance (over ``count`` values per channel) into the cumulative
    running statistics (``momentum=None``) and normalise ``x`` with them, as training-mode BatchNorm does."""
    norm.num_batches_tracked += 1
    factor = 1.0 / float(norm.num_batches_tracked)
    norm.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
    norm.running_var.mul_(1.0 - factor).add_(var, alpha=factor)
    biased = var * ((count - 1) / count)
    return F.batch_norm(x, mean, biased, norm.weight, norm.bias, False, 0.0, norm.eps)

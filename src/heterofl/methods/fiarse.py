"""FIARSE (Wu, Li, Li, Liu, NeurIPS 2024, https://arxiv.org/abs/2407.19389): importance-aware submodels, unstructured.

A client of size s holds, of every convolution and linear weight and bias of the global model (the *maskable*
entries, N of them), the entries whose magnitude reaches one threshold: the k-th largest ``|w|`` over all of
them, k = ceil(s N), recomputed from the global weights every round. It trains the dense model with those
weights masked: the forward pass uses ``w * m(w)``, ``m(w) = 1[|w| >= threshold]`` on the current local
weights, and the mask's gradient passes through FIARSE's threshold surrogate (on kept entries
``dm/d|w| = 2 t / (|w| + t)^2``), so importance moves with training. Masked entries get no gradient and no
weight decay, so a client's update is zero exactly where it did not train. The server takes, per entry, the
mean of the updates of the clients whose update of that entry is non-zero (and, on label rows, who hold the
label), with server step 1; an entry no client changed keeps its value.

Sizes are mapped onto this harness's rates as parameter shares: a client of rate r has size r² (a 1, b 1/4,
c 1/16, d 1/64, e 1/256), the share of parameters of a width-r submodel, so FIARSE's published sizes
1, 1/4, 1/16, 1/64 are the letters a..d. The global model is evaluated at every letter through the top
r² N of its own weights (:func:`top_k_params`), beside the other methods' width-r submodels.

Its compute is honest: a masked client trains the dense model, so its MACs and its download are the dense
model's; its upload can be sparse (values and indices), counted apart (``sparse_bytes_from_clients``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from heterofl.aggregation import label_row_weight
from heterofl.layout import Layout, label_axes
from heterofl.methods.base import WholeLayersMethod

Params = dict[str, torch.Tensor]


class FIARSE(WholeLayersMethod):
    """Every client is sent the whole model (its mask is made from the weights it receives)."""

    name = "fiarse"


def size_of_rate(rate: float) -> float:
    """A width-r submodel's share of parameters, FIARSE's size for a client of rate r."""
    return rate * rate


def maskable_names(model: nn.Module) -> tuple[str, ...]:
    """The weights and biases of every convolution and linear layer (not norms, not embeddings)."""
    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            names += [f"{prefix}.{n}" if prefix else n for n, p in module.named_parameters(recurse=False)]
    return tuple(names)


def magnitude_threshold(params: Params, names: tuple[str, ...], size: float) -> torch.Tensor:
    """The k-th largest ``|w|`` over the maskable entries, k = ceil(size N): keeping ``|w| >= t`` keeps at least
    k entries (more only on ties)."""
    magnitudes = torch.cat([params[name].detach().abs().flatten() for name in names])
    k = min(magnitudes.numel(), max(1, math.ceil(size * magnitudes.numel() - 1e-9)))
    return torch.topk(magnitudes, k, sorted=False).values.min()


class _ThresholdMask(torch.autograd.Function):
    """``w * 1[|w| >= t]`` forward; backward ``g * m * (1 + 2 t |w| / (|w| + t)^2)``: the straight-through
    term plus ``w`` times FIARSE's surrogate ``dm/dw = sign(w) 2 t / (|w| + t)^2`` on kept entries."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        keep = weight.abs() >= threshold
        ctx.save_for_backward(weight, keep, threshold)
        return weight * keep

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight, keep, threshold = ctx.saved_tensors
        magnitude = weight.abs()
        # 0 where |w| = t = 0 (a size-1 mask keeps every entry, zeros included; its surrogate term is 0 there)
        surrogate = (
            2 * threshold * magnitude / (magnitude + threshold).square().clamp_min(torch.finfo(weight.dtype).tiny)
        )
        return grad * keep * (1 + surrogate), None


def masked_weights(params: Params, names: tuple[str, ...], threshold: torch.Tensor) -> Params:
    """The maskable parameters as the forward pass sees them (differentiable through the surrogate)."""
    return {name: _ThresholdMask.apply(params[name], threshold) for name in names}


def top_k_params(params: Params, names: tuple[str, ...], size: float) -> Params:
    """The global model at ``size``: its maskable entries below the size's threshold set to 0 (evaluation)."""
    threshold = magnitude_threshold(params, names, size)
    return {name: (value * (value.abs() >= threshold) if name in names else value) for name, value in params.items()}


def mean_of_nonzero_updates(
    old: Params, trained: Params, layout: Layout, labels_held: torch.Tensor
) -> tuple[Params, torch.Tensor]:
    """FIARSE's aggregation of K clients (``trained[name]`` is (K, *shape)): per entry, ``old`` plus the mean
    update over the clients whose update is non-zero there (on label rows, only clients holding the label).
    Returns the mean and every client's count of non-zero update entries (its sparse upload)."""
    new: Params = {}
    nonzero = torch.zeros(labels_held.shape[0], dtype=torch.long, device=labels_held.device)
    for name, value in old.items():
        delta = trained[name] - value.unsqueeze(0)
        weight = (delta != 0).to(delta.dtype)
        for axis in label_axes(layout[name]):
            weight = weight * label_row_weight(labels_held, delta.shape[axis + 1], axis, delta.dim()).to(delta.dtype)
        nonzero += (weight.reshape(weight.shape[0], -1) != 0).sum(1)
        count = weight.sum(0)
        step = (delta * weight).sum(0) / count.clamp_min(1)
        new[name] = torch.where(count > 0, value + step, value)
    return new, nonzero


class MagnitudeMask:
    """One client's FIARSE mask for one round: the threshold is fixed from the weights it was sent; which
    entries it keeps follows its current weights."""

    def __init__(self, model: nn.Module, size: float) -> None:
        self.names = maskable_names(model)
        self.threshold = magnitude_threshold(dict(model.named_parameters()), self.names, size)

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        params = dict(model.named_parameters())
        return functional_call(model, masked_weights(params, self.names, self.threshold), (inputs,))

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict]:
        """SGD groups: maskable parameters without the optimiser's weight decay (:meth:`decay_kept` adds it on
        kept entries only, so that a masked entry does not move), the others with it."""
        params = dict(model.named_parameters())
        masked = set(self.names)
        return [
            {"params": [params[n] for n in params if n in masked], "weight_decay": 0.0},
            {"params": [params[n] for n in params if n not in masked], "weight_decay": weight_decay},
        ]

    @torch.no_grad()
    def decay_kept(self, model: nn.Module, weight_decay: float) -> None:
        """``grad += weight_decay * w`` on kept entries: what SGD's weight decay adds, after clipping."""
        params = dict(model.named_parameters())
        for name in self.names:
            weight = params[name]
            if weight.grad is not None and weight_decay:
                weight.grad.add_(weight * (weight.abs() >= self.threshold), alpha=weight_decay)

"""Submodel extraction: the leading channels of every layer, for any architecture (spec section 4).

Everything is driven by the model's width layout, so there is one code path for conv, ResNet and the
transformer, and the result is a set of views into the global tensors (no index grids, no copies);
callers copy once into the tensors they train.
"""

from __future__ import annotations

import torch

from heterofl.layout import Heads, Layout, region

Params = dict[str, torch.Tensor]


def extract(global_params: Params, layout: Layout, widths: dict[str, int]) -> Params:
    """The local parameters of a model with hidden ``widths``, as views of ``global_params`` where possible."""
    return {
        name: _flatten_heads(region(tensor, layout[name], widths), layout[name])
        for name, tensor in global_params.items()
    }


def _flatten_heads(view: torch.Tensor, dims: tuple) -> torch.Tensor:
    """Undo region()'s (heads, per_head) split; this is the only place extraction may copy."""
    for axis, dim in enumerate(dims):
        if isinstance(dim, Heads):
            view = view.flatten(axis, axis + 1)
    return view


def load_into(model: torch.nn.Module, params: Params) -> torch.nn.Module:
    """Copy extracted parameters into a model of the matching rate (one copy per tensor)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(params[name])
    return model


def parameters_of(model: torch.nn.Module) -> Params:
    """Detached parameters by name: the state that HeteroFL shares (no buffers exist under static BN)."""
    return {name: p.detach() for name, p in model.named_parameters()}

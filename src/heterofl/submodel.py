"""Submodel extraction: the units a client holds of every layer, for any architecture and any method.

Everything is driven by the model's width layout and the client's selection (``selection.py``), so there
is one code path for conv, ResNet and the transformer and for every extraction method. For contiguous
selections (HeteroFL's leading channels, Diao et al., ICLR 2021, https://arxiv.org/abs/2010.01264) the
result is a set of views into the global tensors (no index grids, no copies); index-set selections are
gathered. Callers copy once into the tensors they train.
"""

from __future__ import annotations

import torch

from heterofl.layout import Heads, Layout, region
from heterofl.selection import Selection, as_selection

Params = dict[str, torch.Tensor]


def extract(global_params: Params, layout: Layout, selection: Selection | dict[str, int]) -> Params:
    """The local parameters a client of ``selection`` holds, as views of ``global_params`` where possible.

    ``selection`` may also be plain group widths, meaning HeteroFL's leading units.
    """
    selection = as_selection(layout, selection)
    return {
        name: _flatten_heads(region(tensor, layout[name], selection), layout[name])
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

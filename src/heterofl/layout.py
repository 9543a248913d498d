"""Width layouts: which dimension of which parameter is cut by which width group.

A model declares, once, for every parameter, what each of its dimensions is (spec section 4):

* ``FULL`` -- never cut (data input channels, kernel taps, positions);
* ``Width(group)`` -- cut to the leading ``width`` entries of that group (a prefix slice);
* ``Heads(group, n)`` -- viewed as ``(n, width / n)`` and cut head-wise to the leading entries of
  every head (the transformer's q/k/v/o);
* ``LABELS`` -- classes or tokens: never cut, but in aggregation a client contributes only the rows
  of its own labels.

Extraction and aggregation (``submodel.py``, ``aggregation.py``) read only this table, so adding an
architecture never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Width:
    group: str


@dataclass(frozen=True)
class Heads:
    group: str
    heads: int


@dataclass(frozen=True)
class _Labels:
    def __repr__(self) -> str:
        return "LABELS"


FULL = None
LABELS = _Labels()
Dim = Width | Heads | _Labels | None
Layout = dict[str, tuple[Dim, ...]]


def region(tensor: torch.Tensor, dims: tuple[Dim, ...], widths: dict[str, int]) -> torch.Tensor:
    """A writable view of ``tensor`` holding the entries a model of ``widths`` owns.

    Head-wise dimensions stay unflattened as ``(heads, width / heads)`` so that the result is a true
    view (no copy); :func:`as_region_shape` brings a local tensor into the same shape.
    """
    if len(dims) != tensor.dim():
        raise ValueError(f"layout has {len(dims)} dims for a tensor of shape {tuple(tensor.shape)}")
    view = tensor
    axis = 0
    for dim in dims:
        if isinstance(dim, Width):
            view = view.narrow(axis, 0, widths[dim.group])
        elif isinstance(dim, Heads):
            per_head = view.shape[axis] // dim.heads
            view = view.unflatten(axis, (dim.heads, per_head)).narrow(axis + 1, 0, widths[dim.group] // dim.heads)
            axis += 1
        axis += 1
    return view


def as_region_shape(local: torch.Tensor, dims: tuple[Dim, ...], leading: int = 0) -> torch.Tensor:
    """View a local tensor (optionally with ``leading`` batch dims) in :func:`region`'s shape."""
    view = local
    axis = leading
    for dim in dims:
        if isinstance(dim, Heads):
            view = view.unflatten(axis, (dim.heads, view.shape[axis] // dim.heads))
            axis += 1
        axis += 1
    return view


def label_axes(dims: tuple[Dim, ...]) -> list[int]:
    """Axes (in region shape) that hold classes/tokens and are masked per client in aggregation."""
    axes, axis = [], 0
    for dim in dims:
        if dim is LABELS:
            axes.append(axis)
        axis += 2 if isinstance(dim, Heads) else 1
    return axes

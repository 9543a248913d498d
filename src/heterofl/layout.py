"""Width layouts: which dimension of which parameter is cut by which width group.

A model declares, once, for every parameter, what each of its dimensions is (HeteroFL, Diao et al., ICLR 2021,
https://arxiv.org/abs/2010.01264, section 3.1):

* ``FULL`` -- never cut (data input channels, kernel taps, positions);
* ``Width(group)`` -- cut to the units of that group a client holds (HeteroFL: the leading ones);
* ``Heads(group, n)`` -- viewed as ``(n, size / n)`` and cut head-wise: the same units within every
  head (the transformer's q/k/v/o);
* ``LABELS`` -- classes or tokens: never cut, but in aggregation a client contributes only the rows
  of its own labels.

Which units a client holds is a separate value, a selection (``selection.py``). Extraction and
aggregation (``submodel.py``, ``aggregation.py``) read only this table and the selection, so adding an
architecture or an extraction method never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the model table (and the report path) import this without PyTorch
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


def space_key(dim: Dim) -> str | None:
    """The unit space a dimension is cut in: its group, or ``group/Nheads`` for the units within a head."""
    if isinstance(dim, Width):
        return dim.group
    if isinstance(dim, Heads):
        return f"{dim.group}/{dim.heads}heads"
    return None


def region(tensor: torch.Tensor, dims: tuple[Dim, ...], selection, leading: int = 0) -> torch.Tensor:
    """The entries of ``tensor`` that a client of ``selection`` holds, in region shape.

    ``selection`` maps unit spaces to held units (``heterofl.selection``). Head-wise dimensions stay
    unflattened as ``(heads, units per head)``. When every cut is contiguous (HeteroFL's prefixes, a
    window that does not wrap) the result is a writable view; otherwise it is a gathered copy
    (``index_select``) and writes must go through :func:`add_to_region`. ``leading`` batch axes are kept.
    """
    view, cuts = _cut_plan(tensor, dims, selection, leading)
    for axis, units in cuts:
        if units.contiguous:
            view = view.narrow(axis, units.start, units.width)
    for axis, units in cuts:
        if not units.contiguous:
            view = view.index_select(axis, units.index(view.device))
    return view


def add_to_region(target: torch.Tensor, dims: tuple[Dim, ...], selection, values: torch.Tensor) -> None:
    """``target[region] += values`` for a region of any selection (``values`` in region shape).

    Contiguous cuts narrow a view of ``target``; index-set cuts scatter with ``index_add_``, one axis at
    a time (the source is widened to the full size of the inner index axes first), so the temporary
    never exceeds the size of ``target``.
    """
    view, cuts = _cut_plan(target, dims, selection, 0)
    for axis, units in cuts:
        if units.contiguous:
            view = view.narrow(axis, units.start, units.width)
    scattered = [(axis, units.index(view.device)) for axis, units in cuts if not units.contiguous]
    if not scattered:
        view += values
        return
    shape = list(view.shape)
    for axis, index in scattered:
        shape[axis] = index.numel()
    values = values.expand(shape)  # counts may arrive broadcastable
    for axis, index in reversed(scattered[1:]):
        shape = list(values.shape)
        shape[axis] = view.shape[axis]
        values = values.new_zeros(shape).index_add_(axis, index, values)
    axis, index = scattered[0]
    view.index_add_(axis, index, values)


def _cut_plan(tensor: torch.Tensor, dims: tuple[Dim, ...], selection, leading: int):
    """``tensor`` in region shape and the (axis, units) cuts to apply to it."""
    if len(dims) != tensor.dim() - leading:
        raise ValueError(f"layout has {len(dims)} dims for a tensor of shape {tuple(tensor.shape)}")
    cuts = []
    axis = leading
    for dim in dims:
        if isinstance(dim, Width):
            cuts.append((axis, selection[space_key(dim)]))
        elif isinstance(dim, Heads):
            axis += 1
            cuts.append((axis, selection[space_key(dim)]))
        axis += 1
    return as_region_shape(tensor, dims, leading), cuts


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

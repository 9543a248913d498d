"""Which units of every width group a client holds, as a value.

HeteroFL (Diao et al., ICLR 2021, https://arxiv.org/abs/2010.01264) gives a client of rate r the leading
``ceil(r K)`` units of every group of K units. Its successors keep the same widths but choose other units:
a rolling window (FedRolex), a random subset (Federated Dropout, FedEcover). A :class:`Units` says which
units of one *unit space* a client holds; a :data:`Selection` maps every unit space of a model to its
:class:`Units`. Extraction and aggregation (``layout.py``) read only this value, so a new method is a new
way of making selections, nothing else.

A unit space is a width group (``Width(group)``), or for head-wise dimensions (``Heads(group, n)``) the
units *within one head*: the same selection applies in every head, so heads keep their count and shape.

Contiguous selections (a prefix, a window that does not wrap) are cut as views (``narrow``): HeteroFL pays
nothing for the generality. Anything else is a sorted index set, gathered with ``index_select`` and
scattered back with ``index_add_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from heterofl.layout import Heads, Layout, space_key


@dataclass(frozen=True)
class Units:
    """``width`` units of one space: ``start .. start + width - 1``, or the sorted ``indices``."""

    width: int
    start: int = 0
    indices: tuple[int, ...] | None = None

    @classmethod
    def prefix(cls, width: int) -> Units:
        return cls(int(width))

    @classmethod
    def window(cls, start: int, width: int, size: int) -> Units:
        """Units ``(start + i) mod size`` for ``i < width``: a view unless the window wraps."""
        start, width = int(start) % size, int(width)
        if start + width <= size:
            return cls(width, start)
        return cls(width, indices=tuple(sorted((start + i) % size for i in range(width))))

    @classmethod
    def subset(cls, indices, size: int) -> Units:
        """An arbitrary set of distinct units in ``[0, size)``, kept sorted."""
        ordered = tuple(sorted(int(i) for i in indices))
        if len(set(ordered)) != len(ordered) or (ordered and (ordered[0] < 0 or ordered[-1] >= size)):
            raise ValueError(f"units {ordered} are not distinct indices in [0, {size})")
        if not ordered or ordered[-1] - ordered[0] + 1 == len(ordered):
            return cls(len(ordered), ordered[0] if ordered else 0)  # contiguous after all: keep it a view
        return cls(len(ordered), indices=ordered)

    @property
    def contiguous(self) -> bool:
        return self.indices is None

    def index(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The held units as a long tensor (cached per device)."""
        return _index_tensor(self.indices if self.indices is not None else (self.start, self.width), str(device))

    def as_list(self) -> list[int]:
        return list(self.indices) if self.indices is not None else list(range(self.start, self.start + self.width))


@lru_cache(maxsize=4096)
def _index_tensor(key: tuple[int, ...], device: str) -> torch.Tensor:
    return torch.tensor(key, dtype=torch.long, device=device)


Selection = dict[str, Units]
"""Unit space key (see :func:`space_key`) -> the units a client holds in it."""


def space_widths(layout: Layout, widths: dict[str, int]) -> dict[str, int]:
    """How many units of every space a model of group ``widths`` holds (per head for head-wise spaces)."""
    out: dict[str, int] = {}
    for dims in layout.values():
        for dim in dims:
            key = space_key(dim)
            if key is not None:
                out[key] = widths[dim.group] // dim.heads if isinstance(dim, Heads) else widths[dim.group]
    return out


def space_sizes(layout: Layout, params: dict[str, torch.Tensor]) -> dict[str, int]:
    """How many units every space has in the model ``params`` (the global model): the policies' domain."""
    out: dict[str, int] = {}
    for name, dims in layout.items():
        for axis, dim in enumerate(dims):
            key = space_key(dim)
            if key is not None:
                size = params[name].shape[axis]
                out[key] = size // dim.heads if isinstance(dim, Heads) else size
    return out


def prefix_selection(layout: Layout, widths: dict[str, int]) -> Selection:
    """HeteroFL's selection: the leading units of every space."""
    return {key: Units.prefix(w) for key, w in space_widths(layout, widths).items()}


def as_selection(layout: Layout, selection: Selection | dict[str, int]) -> Selection:
    """Accept either a :data:`Selection` or plain group widths (meaning HeteroFL's prefixes)."""
    if selection and all(isinstance(v, Units) for v in selection.values()):
        return selection
    return prefix_selection(layout, selection)  # type: ignore[arg-type]

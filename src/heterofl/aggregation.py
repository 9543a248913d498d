"""Count-based aggregation (HeteroFL, Diao et al., ICLR 2021, https://arxiv.org/abs/2010.01264, section 3.1).

Each global entry becomes the unweighted mean over the clients whose submodel holds it; entries that no
client held keep their value. Which entries a client holds is its selection (``selection.py``): the
leading units for HeteroFL, a window or an index set for the other methods; the sums are scattered back
through exactly the cut that extraction used. On ``LABELS`` axes (output rows; the transformer's token
embedding) a client contributes only the rows of its own labels. Rows beyond the label count (the
transformer's [MASK] embedding row) are used by every client and so are averaged over all of them: the
reference never updated that row, a bug we do not copy.
"""

from __future__ import annotations

import torch

from heterofl.layout import Layout, add_to_region, as_region_shape, label_axes
from heterofl.selection import Selection, as_selection

Params = dict[str, torch.Tensor]


class Aggregator:
    """Accumulates sums and counts in global shape; clients of one rate are added as one stacked group."""

    def __init__(self, global_params: Params, layout: Layout) -> None:
        self.global_params = global_params
        self.layout = layout
        self.sums = {k: torch.zeros_like(v) for k, v in global_params.items()}
        self.counts = {k: torch.zeros_like(v) for k, v in global_params.items()}

    def add(
        self,
        stacked: Params,
        selection: Selection | dict[str, int] | list[Selection],
        labels_held: torch.Tensor,
    ) -> None:
        """Add K clients of one architecture: ``stacked[name]`` is (K, *local_shape); ``labels_held`` is bool (K, C).

        ``selection`` is one selection shared by all K clients (or plain widths: HeteroFL's prefixes), or
        one per client. Clients that share a selection are summed first and scattered once.
        """
        if isinstance(selection, list):
            groups: dict[tuple, list[int]] = {}
            for i, sel in enumerate(selection):
                groups.setdefault(_selection_key(sel), []).append(i)
            for members in groups.values():
                index = torch.as_tensor(members, device=labels_held.device)
                self._add_group(
                    {k: v.index_select(0, index) if len(members) < len(selection) else v for k, v in stacked.items()},
                    as_selection(self.layout, selection[members[0]]),
                    labels_held.index_select(0, index) if len(members) < len(selection) else labels_held,
                )
            return
        self._add_group(stacked, as_selection(self.layout, selection), labels_held)

    def _add_group(self, stacked: Params, selection: Selection, labels_held: torch.Tensor) -> None:
        held = labels_held.to(dtype=next(iter(stacked.values())).dtype)
        for name, local in stacked.items():
            dims = self.layout[name]
            local_view = as_region_shape(local, dims, leading=1)
            axes = label_axes(dims)
            if not axes:
                add_to_region(self.sums[name], dims, selection, local_view.sum(0))
                add_to_region(self.counts[name], dims, selection, local_view.new_full((), float(local.shape[0])))
                continue
            weight = torch.ones((), dtype=held.dtype, device=held.device)
            for axis in axes:
                weight = weight * label_row_weight(held, local_view.shape[axis + 1], axis, local_view.dim())
            add_to_region(self.sums[name], dims, selection, (local_view * weight).sum(0))
            add_to_region(self.counts[name], dims, selection, weight.sum(0))

    def mean(self) -> Params:
        """The count-based mean where any client contributed, the old value elsewhere (the server update,
        ``server_update.py``, turns it into the new global model)."""
        return {
            name: torch.where(self.counts[name] > 0, self.sums[name] / self.counts[name].clamp_min(1), old)
            for name, old in self.global_params.items()
        }


def _selection_key(selection) -> tuple:
    return tuple(sorted(selection.items()))


def label_row_weight(held: torch.Tensor, rows: int, axis: int, ndim: int) -> torch.Tensor:
    """(K, ..., rows, ...) 0/1 weights; rows past the label count are held by every client."""
    k, classes = held.shape
    if rows > classes:
        held = torch.cat([held, held.new_ones(k, rows - classes)], dim=1)
    shape = [k] + [1] * (ndim - 1)
    shape[axis + 1] = rows
    return held[:, :rows].reshape(shape)


def aggregate(
    global_params: Params, layout: Layout, clients: list[tuple[Params, dict | Selection, torch.Tensor]]
) -> Params:
    """Aggregate unstacked clients ``(params, selection or widths, labels_held (C,))`` through an Aggregator."""
    aggregator = Aggregator(global_params, layout)
    for params, selection, held in clients:
        aggregator.add({k: v.unsqueeze(0) for k, v in params.items()}, selection, held.unsqueeze(0))
    return aggregator.mean()

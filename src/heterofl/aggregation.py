"""Count-based HeteroFL aggregation (spec section 5).

Each global entry becomes the unweighted mean over the clients whose submodel holds it; entries that no
client held keep their value. On ``LABELS`` axes (output rows; the transformer's token embedding) a client
contributes only the rows of its own labels. Rows beyond the label count (the transformer's [MASK]
embedding row) are used by every client and so are averaged over all of them: the reference never
updated that row, a bug we do not copy.
"""

from __future__ import annotations

import torch

from heterofl.layout import Layout, as_region_shape, label_axes, region

Params = dict[str, torch.Tensor]


class Aggregator:
    """Accumulates sums and counts in global shape; clients of one rate are added as one stacked group."""

    def __init__(self, global_params: Params, layout: Layout) -> None:
        self.global_params = global_params
        self.layout = layout
        self.sums = {k: torch.zeros_like(v) for k, v in global_params.items()}
        self.counts = {k: torch.zeros_like(v) for k, v in global_params.items()}

    def add(self, stacked: Params, widths: dict[str, int], labels_held: torch.Tensor) -> None:
        """Add K clients of one rate: ``stacked[name]`` is (K, *local_shape); ``labels_held`` is bool (K, C)."""
        held = labels_held.to(dtype=next(iter(stacked.values())).dtype)
        for name, local in stacked.items():
            dims = self.layout[name]
            local_view = as_region_shape(local, dims, leading=1)
            sum_view = region(self.sums[name], dims, widths)
            count_view = region(self.counts[name], dims, widths)
            axes = label_axes(dims)
            if not axes:
                sum_view += local_view.sum(0)
                count_view += local.shape[0]
                continue
            weight = torch.ones((), dtype=held.dtype, device=held.device)
            for axis in axes:
                weight = weight * _row_weight(held, local_view.shape[axis + 1], axis, local_view.dim())
            sum_view += (local_view * weight).sum(0)
            count_view += weight.sum(0)

    def result(self) -> Params:
        """The new global parameters: mean where any client contributed, the old value elsewhere."""
        return {
            name: torch.where(self.counts[name] > 0, self.sums[name] / self.counts[name].clamp_min(1), old)
            for name, old in self.global_params.items()
        }


def _row_weight(held: torch.Tensor, rows: int, axis: int, ndim: int) -> torch.Tensor:
    """(K, ..., rows, ...) 0/1 weights; rows past the label count are held by every client."""
    k, classes = held.shape
    if rows > classes:
        held = torch.cat([held, held.new_ones(k, rows - classes)], dim=1)
    shape = [k] + [1] * (ndim - 1)
    shape[axis + 1] = rows
    return held[:, :rows].reshape(shape)


def aggregate(
    global_params: Params, layout: Layout, clients: list[tuple[Params, dict[str, int], torch.Tensor]]
) -> Params:
    """Aggregate unstacked clients ``(params, widths, labels_held (C,))``: a convenience over Aggregator."""
    aggregator = Aggregator(global_params, layout)
    for params, widths, held in clients:
        aggregator.add({k: v.unsqueeze(0) for k, v in params.items()}, widths, held.unsqueeze(0))
    return aggregator.result()

"""A multilayer perceptron for 28x28 images (MNIST, MNIST5k): the HeteroFL model with BatchNorm1d.

flatten -> [Linear -> Scaler -> Norm -> ReLU] per hidden layer -> Linear, the conv model's block order
(its conv replaced by a linear layer, no pooling). The hidden widths scale with the rate; the input (the
784 pixels) and the output rows (the labels) do not.

Base widths 256 and 128: about the size of FedAvg's MNIST "2NN" (McMahan et al., 2017: two layers of 200),
and both divide by 16, so every rate a..e gives whole widths (16 and 8 at rate e) that GroupNorm's 4
groups (``gn``) divide too. Since the input layer is never cut, its 784 x h0 MACs shrink only linearly
with the rate: the MLP's cost falls more slowly than the conv model's.
"""

from __future__ import annotations

import torch
from torch import nn

from heterofl.errors import HeteroFLError
from heterofl.layout import FULL, LABELS, Layout, Width
from heterofl.models.layers import Scaler, make_norm
from heterofl.rates import width

MLP_HIDDEN = (256, 128)
IMAGE_SIZE = 28
"""The side of the images the MLP's first layer takes (MNIST's)."""
MLP_NORMS = ("bn", "ln", "gn", "none")
"""The norms that make sense on a vector of features. ``in`` (one group per feature) would normalise each
single value on its own: every output would be the norm's bias."""


def make_feature_norm(kind: str, features: int) -> nn.Module:
    """The norm of a (N, features) activation: static BN as BatchNorm1d; ``ln``, ``gn`` and ``none`` as
    :func:`~heterofl.models.layers.make_norm` builds them (GroupNorm takes (N, C) as it takes (N, C, H, W))."""
    if kind not in MLP_NORMS:
        raise HeteroFLError("norm", f"{kind!r} is not a norm of 1-D features", ", ".join(MLP_NORMS))
    if kind == "bn":
        return nn.BatchNorm1d(features, momentum=None, track_running_stats=False)
    return make_norm(kind, features)


class LinearBlock(nn.Module):
    def __init__(self, fin: int, fout: int, rate: float, norm: str, scale: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(fin, fout)
        self.scaler = Scaler(rate, scale)
        self.norm = make_feature_norm(norm, fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.scaler(self.linear(x))))


class MLP(nn.Module):
    """Linear -> Scaler -> Norm -> ReLU per hidden width, then a linear head; images are flattened first."""

    def __init__(
        self,
        rate: float = 1.0,
        scaler_rate: float = 1.0,
        norm: str = "bn",
        scale: bool = True,
        in_channels: int = 1,
        num_classes: int = 10,
        hidden: tuple[int, ...] = MLP_HIDDEN,
    ) -> None:
        super().__init__()
        sizes = [width(h, rate) for h in hidden]
        self.widths = {f"h{i}": s for i, s in enumerate(sizes)}
        self.in_features = in_channels * IMAGE_SIZE * IMAGE_SIZE
        self.batch_norm = norm == "bn"
        features = [self.in_features, *sizes]
        self.blocks = nn.ModuleList(
            LinearBlock(features[i], features[i + 1], scaler_rate, norm, scale) for i in range(len(sizes))
        )
        self.classifier = nn.Linear(sizes[-1], num_classes)
        nn.init.zeros_(self.classifier.bias)
        self.layout = self._layout(norm, len(sizes))

    @staticmethod
    def _layout(norm: str, depth: int) -> Layout:
        layout: Layout = {}
        for i in range(depth):
            out, fin = Width(f"h{i}"), (Width(f"h{i - 1}") if i else FULL)
            layout[f"blocks.{i}.linear.weight"] = (out, fin)
            layout[f"blocks.{i}.linear.bias"] = (out,)
            if norm != "none":
                layout[f"blocks.{i}.norm.weight"] = (out,)
                layout[f"blocks.{i}.norm.bias"] = (out,)
        layout["classifier.weight"] = (LABELS, Width(f"h{depth - 1}"))
        layout["classifier.bias"] = (LABELS,)
        return layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise HeteroFLError(
                "model",
                f"mlp takes images of {self.in_features} values, got {x.shape[1]}",
                f"{self.in_features // IMAGE_SIZE**2}x{IMAGE_SIZE}x{IMAGE_SIZE} images (MNIST, MNIST5k)",
            )
        if self.batch_norm and self.training and x.shape[0] < 2:
            raise HeteroFLError(
                "norm",
                "bn cannot normalise a training batch of one sample in the mlp (BatchNorm1d has no batch statistics)",
                "ln, gn, none, or batch sizes that leave no batch of one",
            )
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)


def build_mlp(rate: float, scaler_rate: float, *, norm: str, scale: bool, in_channels: int, num_classes: int) -> MLP:
    """The registry's builder (``heterofl.models.registry``)."""
    return MLP(rate, scaler_rate, norm, scale, in_channels, num_classes)

"""The reference's MNIST CNN (spec section 2): four 3x3 conv blocks, global average pool, linear."""

from __future__ import annotations

import torch
from torch import nn

from heterofl.layout import FULL, LABELS, Layout, Width
from heterofl.models.layers import Scaler, make_norm
from heterofl.rates import width

CONV_HIDDEN = (64, 128, 256, 512)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, rate: float, norm: str, scale: bool, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.scaler = Scaler(rate, scale)
        self.norm = make_norm(norm, cout)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.norm(self.scaler(self.conv(x)))))


class Conv(nn.Module):
    """Conv -> Scaler -> Norm -> ReLU -> MaxPool, four times (no pool after the last), then a linear head."""

    def __init__(
        self,
        rate: float = 1.0,
        scaler_rate: float = 1.0,
        norm: str = "bn",
        scale: bool = True,
        in_channels: int = 1,
        num_classes: int = 10,
        hidden: tuple[int, ...] = CONV_HIDDEN,
    ) -> None:
        super().__init__()
        sizes = [width(h, rate) for h in hidden]
        self.widths = {f"h{i}": s for i, s in enumerate(sizes)}
        channels = [in_channels, *sizes]
        self.blocks = nn.ModuleList(
            ConvBlock(channels[i], channels[i + 1], scaler_rate, norm, scale, pool=i < len(sizes) - 1)
            for i in range(len(sizes))
        )
        self.classifier = nn.Linear(sizes[-1], num_classes)
        nn.init.zeros_(self.classifier.bias)
        self.layout = self._layout(norm, len(sizes))

    @staticmethod
    def _layout(norm: str, depth: int) -> Layout:
        layout: Layout = {}
        for i in range(depth):
            out, cin = Width(f"h{i}"), (Width(f"h{i - 1}") if i else FULL)
            layout[f"blocks.{i}.conv.weight"] = (out, cin, FULL, FULL)
            layout[f"blocks.{i}.conv.bias"] = (out,)
            if norm != "none":
                layout[f"blocks.{i}.norm.weight"] = (out,)
                layout[f"blocks.{i}.norm.bias"] = (out,)
        layout["classifier.weight"] = (LABELS, Width(f"h{depth - 1}"))
        layout["classifier.bias"] = (LABELS,)
        return layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.mean(dim=(2, 3)))

"""The reference's pre-activation ResNet18 for CIFAR10 (spec section 4).

The paper's numbers come from blocks ``[1, 1, 1, 2]`` (9.6 M parameters); the reference's HEAD uses
``[2, 2, 2, 2]`` (11.2 M). Both are available.
"""

from __future__ import annotations

import torch
from torch import nn

from heterofl.layout import FULL, LABELS, Dim, Layout, Width
from heterofl.models.layers import Scaler, make_norm
from heterofl.rates import width

RESNET_HIDDEN = (64, 128, 256, 512)


class PreActBlock(nn.Module):
    """relu(n1(scaler(x))) -> conv1 -> relu(n2(scaler(.))) -> conv2, plus an identity or 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, rate: float, norm: str, scale: bool) -> None:
        super().__init__()
        self.n1 = make_norm(norm, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n2 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.scaler = Scaler(rate, scale)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.n1(self.scaler(x)))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.n2(self.scaler(out))))
        return out + shortcut


class ResNet(nn.Module):
    def __init__(
        self,
        rate: float = 1.0,
        scaler_rate: float = 1.0,
        norm: str = "bn",
        scale: bool = True,
        in_channels: int = 3,
        num_classes: int = 10,
        blocks: tuple[int, ...] = (1, 1, 1, 2),
        hidden: tuple[int, ...] = RESNET_HIDDEN,
    ) -> None:
        super().__init__()
        sizes = [width(h, rate) for h in hidden]
        self.widths = {f"h{i}": s for i, s in enumerate(sizes)}
        self.conv1 = nn.Conv2d(in_channels, sizes[0], 3, 1, 1, bias=False)
        layout: Layout = {"conv1.weight": (Width("h0"), FULL, FULL, FULL)}
        layers, cin, group_in = [], sizes[0], "h0"
        for stage, (count, cout) in enumerate(zip(blocks, sizes, strict=True)):
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                block = PreActBlock(cin, cout, stride, scaler_rate, norm, scale)
                layout.update(self._block_layout(f"layers.{len(layers)}", block, group_in, f"h{stage}", norm))
                layers.append(block)
                cin, group_in = cout, f"h{stage}"
        self.layers = nn.ModuleList(layers)
        self.n4 = make_norm(norm, cin)
        self.scaler = Scaler(scaler_rate, scale)
        self.linear = nn.Linear(cin, num_classes)
        nn.init.zeros_(self.linear.bias)
        if norm != "none":
            layout["n4.weight"] = layout["n4.bias"] = (Width(group_in),)
        layout["linear.weight"] = (LABELS, Width(group_in))
        layout["linear.bias"] = (LABELS,)
        self.layout = layout

    @staticmethod
    def _block_layout(prefix: str, block: PreActBlock, group_in: str, group_out: str, norm: str) -> Layout:
        cin: Dim = Width(group_in)
        out: Dim = Width(group_out)
        layout: Layout = {
            f"{prefix}.conv1.weight": (out, cin, FULL, FULL),
            f"{prefix}.conv2.weight": (out, out, FULL, FULL),
        }
        if norm != "none":
            layout[f"{prefix}.n1.weight"] = layout[f"{prefix}.n1.bias"] = (cin,)
            layout[f"{prefix}.n2.weight"] = layout[f"{prefix}.n2.bias"] = (out,)
        if block.shortcut is not None:
            layout[f"{prefix}.shortcut.weight"] = (out, cin, FULL, FULL)
        return layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for layer in self.layers:
            out = layer(out)
        out = torch.relu(self.n4(self.scaler(out)))
        return self.linear(out.mean(dim=(2, 3)))

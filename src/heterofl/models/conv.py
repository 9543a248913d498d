"""The reference's MNIST CNN: four 3x3 conv blocks, global average pool, linear.

With ``stage_exits`` (depth-heterogeneous methods, ``models/exits.py``) every block is a stage with its own
exit, ``exits.i`` after block i and the usual ``classifier`` after the last; ``depth`` keeps the first
``depth`` stages and their exits.
"""

from __future__ import annotations

import torch
from torch import nn

from heterofl.layout import FULL, LABELS, Layout, Width
from heterofl.models.exits import PoolExit, exit_output
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
        stage_exits: str | None = None,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        sizes = [width(h, rate) for h in hidden]
        self.widths = {f"h{i}": s for i, s in enumerate(sizes)}
        self.stage_exits = stage_exits
        held = depth or len(sizes)
        if held != len(sizes) and stage_exits is None:
            raise ValueError(f"depth {depth} of {len(sizes)} stages needs stage exits (a classifier after each stage)")
        channels = [in_channels, *sizes]
        self.blocks = nn.ModuleList(
            ConvBlock(channels[i], channels[i + 1], scaler_rate, norm, scale, pool=i < len(sizes) - 1)
            for i in range(held)
        )
        if held == len(sizes):
            self.classifier = nn.Linear(sizes[-1], num_classes)
            nn.init.zeros_(self.classifier.bias)
        # after the shared layers, so that these draw the same initial values as in a model without exits
        exits = range(min(held, len(sizes) - 1)) if stage_exits is not None else ()
        self.exits = nn.ModuleList(PoolExit(sizes[i], num_classes, None) for i in exits)
        self.layout = self._layout(norm, held, len(sizes), stage_exits is not None)
        self.stages = tuple((f"blocks.{i}",) for i in range(held))

    @staticmethod
    def _layout(norm: str, held: int, stages: int, exits: bool) -> Layout:
        layout: Layout = {}
        for i in range(held):
            out, cin = Width(f"h{i}"), (Width(f"h{i - 1}") if i else FULL)
            layout[f"blocks.{i}.conv.weight"] = (out, cin, FULL, FULL)
            layout[f"blocks.{i}.conv.bias"] = (out,)
            if norm != "none":
                layout[f"blocks.{i}.norm.weight"] = (out,)
                layout[f"blocks.{i}.norm.bias"] = (out,)
        for i in range(min(held, stages - 1) if exits else 0):
            layout[f"exits.{i}.linear.weight"] = (LABELS, Width(f"h{i}"))
            layout[f"exits.{i}.linear.bias"] = (LABELS,)
        if held == stages:
            layout["classifier.weight"] = (LABELS, Width(f"h{stages - 1}"))
            layout["classifier.bias"] = (LABELS,)
        return layout

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.stage_exits is None:
            for block in self.blocks:
                x = block(x)
            return self.classifier(x.mean(dim=(2, 3)))
        logits = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            head = self.exits[i] if i < len(self.exits) else None
            logits.append(head(x) if head is not None else self.classifier(x.mean(dim=(2, 3))))
        return exit_output(logits, self.training, self.stage_exits)

"""The reference's pre-activation ResNet18 for CIFAR10.

The paper's numbers come from blocks ``[1, 1, 1, 2]`` (9.6 M parameters); the reference's HEAD uses
``[2, 2, 2, 2]`` (11.2 M). Both are available.

With ``stage_exits`` (depth-heterogeneous methods, ``models/exits.py``) each of the four widths is a stage
(the stem ``conv1`` belongs to the first) with its own exit: ``exits.s`` (norm, ReLU, pool, linear) after
stage s and the usual ``n4``/``linear`` head after the last; ``depth`` keeps the first ``depth`` stages and
their exits.
"""

from __future__ import annotations

import torch
from torch import nn

from heterofl.layout import FULL, LABELS, Dim, Layout, Width
from heterofl.models.exits import PoolExit, exit_output
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
        if len(blocks) != len(sizes):
            raise ValueError(f"blocks {tuple(blocks)} must give one count per width {tuple(hidden)}")
        self.conv1 = nn.Conv2d(in_channels, sizes[0], 3, 1, 1, bias=False)
        layout: Layout = {"conv1.weight": (Width("h0"), FULL, FULL, FULL)}
        layers, cin, group_in, stage_ends, stages = [], sizes[0], "h0", [], []
        for stage, (count, cout) in enumerate(zip(blocks[:held], sizes, strict=False)):
            names = ["conv1"] if stage == 0 else []
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                block = PreActBlock(cin, cout, stride, scaler_rate, norm, scale)
                layout.update(self._block_layout(f"layers.{len(layers)}", block, group_in, f"h{stage}", norm))
                names.append(f"layers.{len(layers)}")
                layers.append(block)
                cin, group_in = cout, f"h{stage}"
            stage_ends.append(len(layers))
            stages.append(tuple(names))
        self.layers = nn.ModuleList(layers)
        self.stage_ends = tuple(stage_ends)
        self.stages = tuple(stages)
        if held == len(sizes):
            self.n4 = make_norm(norm, cin)
            self.linear = nn.Linear(cin, num_classes)
            nn.init.zeros_(self.linear.bias)
            if norm != "none":
                layout["n4.weight"] = layout["n4.bias"] = (Width(group_in),)
            layout["linear.weight"] = (LABELS, Width(group_in))
            layout["linear.bias"] = (LABELS,)
        self.scaler = Scaler(scaler_rate, scale)
        # after the shared layers, so that these draw the same initial values as in a model without exits
        exits = range(min(held, len(sizes) - 1)) if stage_exits is not None else ()
        self.exits = nn.ModuleList(PoolExit(sizes[s], num_classes, norm) for s in exits)
        for s in exits:
            if norm != "none":
                layout[f"exits.{s}.norm.weight"] = layout[f"exits.{s}.norm.bias"] = (Width(f"h{s}"),)
            layout[f"exits.{s}.linear.weight"] = (LABELS, Width(f"h{s}"))
            layout[f"exits.{s}.linear.bias"] = (LABELS,)
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

    def _head(self, out: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.n4(self.scaler(out)))
        return self.linear(out.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.conv1(x)
        if self.stage_exits is None:
            for layer in self.layers:
                out = layer(out)
            return self._head(out)
        logits, start = [], 0
        for stage, end in enumerate(self.stage_ends):
            for layer in self.layers[start:end]:
                out = layer(out)
            start = end
            logits.append(self.exits[stage](out) if stage < len(self.exits) else self._head(out))
        return exit_output(logits, self.training, self.stage_exits)

"""The one table of models: how each is built, which options it takes and the input it counts cost on.

``build_model`` dispatches through :data:`MODELS`; configuration checks names and kinds against it and
the complexity summary takes its example input and default sizes from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from heterofl.data.registry import IMAGE, LANGUAGE
from heterofl.errors import HeteroFLError
from heterofl.models.conv import Conv
from heterofl.models.resnet import ResNet
from heterofl.models.transformer import Transformer


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``builder(rate, scaler_rate, **{k: options[k] for k in kwargs})`` builds it.

    ``kwargs`` names the :func:`heterofl.models.build_model` options the builder takes. ``in_channels``,
    ``num_classes`` and ``input_size`` describe the example summary.py counts cost on (an MNIST image for
    conv, a CIFAR image for resnet18, a 64-token window over the WikiText2 vocabulary for transformer).
    """

    name: str
    kind: str
    builder: Callable[..., nn.Module]
    kwargs: tuple[str, ...]
    num_classes: int
    input_size: int
    in_channels: int | None = None

    def build(self, rate: float, scaler_rate: float, **options: Any) -> nn.Module:
        return self.builder(rate, scaler_rate, **{name: options[name] for name in self.kwargs})

    def counting_kwargs(self) -> dict[str, int]:
        """The size options of the counting example (``in_channels``/``num_classes``) the builder takes."""
        sizes = {"in_channels": self.in_channels, "num_classes": self.num_classes}
        return {name: value for name, value in sizes.items() if name in self.kwargs and value is not None}

    def example_input(self) -> torch.Tensor:
        """One zero input of batch 1: an image (1, C, S, S) or a token window (1, S)."""
        if self.kind == LANGUAGE:
            return torch.zeros(1, self.input_size, dtype=torch.int64)
        return torch.zeros(1, self.in_channels, self.input_size, self.input_size)


def _conv(rate: float, scaler_rate: float, *, norm: str, scale: bool, in_channels: int, num_classes: int) -> Conv:
    return Conv(rate, scaler_rate, norm, scale, in_channels, num_classes)


def _resnet(
    rate: float,
    scaler_rate: float,
    *,
    norm: str,
    scale: bool,
    in_channels: int,
    num_classes: int,
    resnet_blocks: tuple[int, ...],
) -> ResNet:
    return ResNet(rate, scaler_rate, norm, scale, in_channels, num_classes, tuple(resnet_blocks))


def _transformer(rate: float, scaler_rate: float, *, num_classes: int) -> Transformer:
    return Transformer(rate, scaler_rate, num_tokens=num_classes)


_IMAGE_KWARGS = ("norm", "scale", "in_channels", "num_classes")
_SPECS = (
    ModelSpec("conv", IMAGE, _conv, _IMAGE_KWARGS, num_classes=10, input_size=28, in_channels=1),
    ModelSpec(
        "resnet18", IMAGE, _resnet, (*_IMAGE_KWARGS, "resnet_blocks"), num_classes=10, input_size=32, in_channels=3
    ),
    ModelSpec("transformer", LANGUAGE, _transformer, ("num_classes",), num_classes=33279, input_size=64),
)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def model_names() -> tuple[str, ...]:
    """Every model name, in the registry's order."""
    return tuple(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``; an unknown name raises naming the field and the allowed names."""
    spec = MODELS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise HeteroFLError("model", f"{name!r} is unknown", ", ".join(MODELS))
    return spec


__all__ = ["MODELS", "ModelSpec", "model_names", "model_spec"]

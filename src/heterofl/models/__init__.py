"""Model construction: every model is built for a rate and carries its width layout."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Protocol

from heterofl.layout import Layout
from heterofl.lazy import lazy_names
from heterofl.models.registry import MODELS, ModelSpec, model_names, model_spec

if TYPE_CHECKING:
    from torch import nn

MODEL_NAMES = model_names()
_ON_DEMAND = {  # they import PyTorch: loaded on first use (PEP 562), so the model table alone needs none
    "Conv": "heterofl.models.conv",
    "ResNet": "heterofl.models.resnet",
    "Transformer": "heterofl.models.transformer",
    "Scaler": "heterofl.models.layers",
    "make_norm": "heterofl.models.layers",
    "masked_cross_entropy": "heterofl.models.layers",
}

# only __getattr__: dir() stays the plain module listing
__getattr__ = lazy_names(globals(), _ON_DEMAND)[0]


class SliceableModel(Protocol):
    """What extraction and aggregation need: hidden widths per group and a width layout."""

    widths: dict[str, int]
    layout: Layout


def build_model(
    name: str,
    rate: float,
    *,
    global_rate: float = 1.0,
    norm: str = "bn",
    scale: bool = True,
    num_classes: int = 10,
    in_channels: int = 1,
    resnet_blocks: tuple[int, ...] = (1, 1, 1, 2),
    stage_exits: str | None = None,
    depth_of: Mapping[float, int] | None = None,
) -> nn.Module:
    """A model whose hidden widths are ``rate`` times the base widths; its Scaler uses rate / global_rate.

    With ``depth_of`` (depth-heterogeneous methods) ``rate`` names a depth level instead: the model has the
    global width and the first ``depth_of[rate]`` stages, each with an exit (``stage_exits``)."""
    options = {"norm": norm, "scale": scale, "num_classes": num_classes, "in_channels": in_channels}
    options["resnet_blocks"] = resnet_blocks
    if depth_of is not None:
        depth = depth_of[rate]
        return model_spec(name).build(global_rate, 1.0, **options, stage_exits=stage_exits, depth=depth)
    return model_spec(name).build(rate, rate / global_rate, **options, stage_exits=None, depth=None)


def model_factory(
    name: str,
    *,
    global_rate: float,
    norm: str,
    scale: bool,
    num_classes: int,
    in_channels: int,
    resnet_blocks: tuple[int, ...] = (1, 1, 1, 2),
    stage_exits: str | None = None,
    depth_of: Mapping[float, int] | None = None,
) -> partial:
    """``rate -> model`` with everything else fixed: the one place a run decides how models look."""
    return partial(
        build_model,
        name,
        global_rate=global_rate,
        norm=norm,
        scale=scale,
        num_classes=num_classes,
        in_channels=in_channels,
        resnet_blocks=resnet_blocks,
        stage_exits=stage_exits,
        depth_of=depth_of,
    )


__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "Conv",
    "ModelSpec",
    "ResNet",
    "Scaler",
    "SliceableModel",
    "Transformer",
    "build_model",
    "make_norm",
    "masked_cross_entropy",
    "model_factory",
    "model_names",
    "model_spec",
]

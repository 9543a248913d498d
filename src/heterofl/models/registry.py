"""The one table of models: how each is built, what it declares about itself, and the input it counts cost on.

``build_model`` dispatches through :data:`MODELS`; configuration checks names, kinds and norms against it,
and the complexity summary, the report's Params/FLOPs columns and the accounting take their example input
and default sizes from it. Adding a model is its module and one :class:`ModelSpec` line in ``_SPECS`` (its
builder as ``"module:function"``).

A spec is checked twice: its declarations when it is made (:meth:`ModelSpec.__post_init__`), and against
the models it really builds the first time :func:`model_spec` hands it out (:meth:`ModelSpec.verify`:
meta-device builds, no memory, no random draw).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from heterofl.data.registry import IMAGE, LANGUAGE
from heterofl.errors import HeteroFLError
from heterofl.layout import LABELS, Heads, Layout, Width

if TYPE_CHECKING:  # PyTorch is imported where a model is built: the table itself (and the report) need none
    import torch
    from torch import nn

    from heterofl.models.conv import Conv
    from heterofl.models.resnet import ResNet
    from heterofl.models.transformer import Transformer

NORMS = ("bn", "in", "ln", "gn", "none")
"""The norms ``heterofl.models.layers.make_norm`` builds (the control string's ``norm`` field)."""

BUILD_OPTIONS = ("norm", "scale", "in_channels", "num_classes", "resnet_blocks", "stage_exits", "depth")
"""The options :func:`heterofl.models.build_model` passes; a builder takes a subset (``ModelSpec.kwargs``)."""
_VERIFY_OPTIONS = {"scale": True, "resnet_blocks": (1, 1, 1, 2)}
"""The options :meth:`ModelSpec.verify` builds with besides the norm and the counting sizes."""
_VERIFY_RATES = (1.0, 0.0625)
"""The widest and the narrowest rate (letters a and e)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``builder(rate, scaler_rate, **{k: options[k] for k in kwargs})`` builds it.

    ``kwargs`` names the :func:`heterofl.models.build_model` options the builder takes. ``in_channels``,
    ``num_classes`` and ``input_size`` describe the example summary.py counts cost on (an MNIST image for
    conv and mlp, a CIFAR image for resnet18, a 64-token window over the WikiText2 vocabulary for
    transformer).

    What the rest of the code learns about a model, besides how to build it:

    * layout: the built model's ``layout`` attribute *is* the declaration (it depends on the build options:
      norm, depth, ResNet blocks, so the class makes it alongside its parameters; federation, extraction
      and aggregation read it from the model). :meth:`layout` points at it, and :meth:`verify` checks that
      it covers every parameter exactly, with one entry per dimension, and names only groups the model's
      ``widths`` holds.
    * ``norms``: the values of the control string's ``norm`` field a run of this model may name;
      configuration refuses any other. A model that takes the ``norm`` option builds each of them; one
      that does not (the transformer: its LayerNorms are part of the architecture) declares the single
      value its controls carry, which it does not read.
    * ``exits``: the output layers (classifiers), as parameter-name prefixes, each producing the label
      rows (``LABELS`` first): the one head of the model as the width methods train it.
    * ``stages``: how many stages the model has for depth-heterogeneous methods (DepthFL, InclusiveFL); 0
      when it has none. A model with stages takes the ``stage_exits`` and ``depth`` options: it then builds
      an exit after each stage (``models/exits.py``), declares its stages (the ``stages`` attribute: the
      parameter-name prefixes of each) and keeps the first ``depth`` of them. :meth:`verify` builds every
      depth and checks that each is the global model's first stages and exits, same names, same shapes.
    """

    name: str
    kind: str
    builder: Callable[..., nn.Module] | str
    kwargs: tuple[str, ...]
    num_classes: int
    input_size: int
    in_channels: int | None = None
    norms: tuple[str, ...] = field(kw_only=True)
    exits: tuple[str, ...] = field(kw_only=True)
    stages: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        def refuse(problem: str, allowed: str) -> None:
            raise HeteroFLError("model", f"{self.name!r}: {problem}", allowed)

        if self.kind not in (IMAGE, LANGUAGE):
            refuse(f"kind {self.kind!r} is unknown", f"{IMAGE}, {LANGUAGE}")
        if self.kind == IMAGE and not self.in_channels:
            refuse("an image model needs in_channels for its counting example", "a positive integer")
        unknown = [k for k in self.kwargs if k not in BUILD_OPTIONS]
        if not isinstance(self.kwargs, tuple) or unknown:
            refuse(f"kwargs {self.kwargs!r} names options build_model does not pass", ", ".join(BUILD_OPTIONS))
        if not isinstance(self.norms, tuple) or not self.norms or len(set(self.norms)) != len(self.norms):
            refuse(f"norms {self.norms!r} is not a tuple of distinct norms", ", ".join(NORMS))
        if any(norm not in NORMS for norm in self.norms):
            refuse(f"norms {self.norms!r} names an unknown norm", ", ".join(NORMS))
        if "norm" not in self.kwargs and len(self.norms) != 1:
            refuse(f"takes no norm option but declares norms {self.norms!r}", "the one value its controls carry")
        if not isinstance(self.exits, tuple) or not self.exits or not all(isinstance(e, str) and e for e in self.exits):
            refuse(f"exits {self.exits!r} is not a tuple of parameter-name prefixes", "e.g. ('classifier',)")
        if self.stages and not {"stage_exits", "depth"} <= set(self.kwargs):
            refuse(f"declares {self.stages} stages but its builder takes no stage_exits and depth", "both options")

    def build(self, rate: float, scaler_rate: float, **options: Any) -> nn.Module:
        return self.build_function()(rate, scaler_rate, **{k: options[k] for k in self.kwargs if k in options})

    def build_function(self) -> Callable[..., nn.Module]:
        """``builder`` itself, or the function its ``"module:function"`` names (imported on first use, so that a
        new model is its own module plus one line of ``_SPECS``)."""
        if callable(self.builder):
            return self.builder
        module, _, attribute = self.builder.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            problem = f"{self.name!r}: builder {self.builder!r} ({error})"
            raise HeteroFLError("model", problem, "module:function") from None

    @staticmethod
    def layout(model: nn.Module) -> Layout:
        """The width layout ``model`` declares (its ``layout`` attribute; see the class docstring)."""
        return model.layout

    def exit_parameters(self, model: nn.Module) -> dict[str, list[str]]:
        """Every exit's parameter names in ``model`` (a prefix names a module: ``classifier`` -> ``classifier.*``)."""
        names = [name for name, _ in model.named_parameters()]
        return {exit_: [n for n in names if n.startswith(exit_ + ".")] for exit_ in self.exits}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample of the counting example: (C, S, S) for an image, () for a token window (length S)."""
        return () if self.kind == LANGUAGE else (self.in_channels, self.input_size, self.input_size)

    def counting_kwargs(self) -> dict[str, int]:
        """The size options of the counting example (``in_channels``/``num_classes``) the builder takes."""
        sizes = {"in_channels": self.in_channels, "num_classes": self.num_classes}
        return {name: value for name, value in sizes.items() if name in self.kwargs and value is not None}

    def example_input(self) -> torch.Tensor:
        """One zero input of batch 1: an image (1, C, S, S) or a token window (1, S)."""
        import torch

        if self.kind == LANGUAGE:
            return torch.zeros(1, self.input_size, dtype=torch.int64)
        return torch.zeros(1, *self.sample_shape)

    def verify(self) -> None:
        """Build the model at every declared norm and at rates a and e (on the meta device) and check what
        the spec and the model declare against what was built; raises naming the model and the fact."""
        import torch

        for norm in self.norms if "norm" in self.kwargs else self.norms[:1]:
            for rate in _VERIFY_RATES:
                options = {**_VERIFY_OPTIONS, **self.counting_kwargs(), "norm": norm}
                where = f"{self.name!r} (norm {norm}, rate {rate:g})"
                try:
                    with torch.random.fork_rng(devices=[]), torch.device("meta"):
                        model = self.build(rate, rate, **options)
                except ValueError as error:  # HeteroFLError included; GroupNorm's groups not dividing a width
                    raise HeteroFLError("model", f"{where} cannot be built: {error}", "a norm it builds") from error
                _check_built(self, model, norm, where)
        if self.stages:
            self._verify_stages()

    def _verify_stages(self) -> None:
        """Every depth 1..stages builds the full model's first stages and exits: same names, same shapes."""
        import torch

        options = {**_VERIFY_OPTIONS, **self.counting_kwargs(), "norm": self.norms[0], "stage_exits": "all"}
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            full = dict(self.build(1.0, 1.0, **options, depth=None).named_parameters())
            for depth in range(1, self.stages + 1):
                model = self.build(1.0, 1.0, **options, depth=depth)
                params = dict(model.named_parameters())
                where = f"{self.name!r} at depth {depth}"
                if set(model.layout) != set(params) or len(getattr(model, "stages", ())) != depth:
                    raise HeteroFLError("model", f"{where}: layout or stages do not match its parameters", "one each")
                if any(name not in full or full[name].shape != p.shape for name, p in params.items()):
                    raise HeteroFLError("model", f"{where}: parameters not in the full model", "a prefix of it")


def _check_built(spec: ModelSpec, model: nn.Module, norm: str, where: str) -> None:
    from torch.nn.modules.batchnorm import _BatchNorm

    def refuse(problem: str, allowed: str) -> None:
        raise HeteroFLError("model", f"{where}: {problem}", allowed)

    layout, widths = getattr(model, "layout", None), getattr(model, "widths", None)
    if not isinstance(layout, dict) or not isinstance(widths, dict):
        refuse("the model has no layout or widths attribute", "a dict of parameter -> dims and of group -> width")
    params = dict(model.named_parameters())
    missing, stray = sorted(set(params) - set(layout)), sorted(set(layout) - set(params))
    if missing or stray:
        refuse(f"layout misses parameters {missing} and names non-parameters {stray}", "one entry per parameter")
    for name, dims in layout.items():
        if len(dims) != params[name].dim():
            refuse(f"layout of {name} has {len(dims)} dims for shape {tuple(params[name].shape)}", "one per dim")
        groups = [d.group for d in dims if isinstance(d, Width | Heads)]
        if any(g not in widths for g in groups):
            refuse(f"layout of {name} names groups {groups} not all in widths {sorted(widths)}", "a group of widths")
    for exit_, names in spec.exit_parameters(model).items():
        if not names:
            refuse(f"exit {exit_!r} names no parameter", "a prefix of the output layer's parameter names")
        if any(layout[n][:1] != (LABELS,) for n in names):
            refuse(f"exit {exit_!r} has parameters whose rows are not the labels", "LABELS as the first dim")
    if "norm" in spec.kwargs and any(isinstance(m, _BatchNorm) for m in model.modules()) != (norm == "bn"):
        refuse("BatchNorm layers are built exactly when the norm is bn, not otherwise", "static BN for bn only")


def _conv(
    rate: float,
    scaler_rate: float,
    *,
    norm: str,
    scale: bool,
    in_channels: int,
    num_classes: int,
    stage_exits: str | None = None,
    depth: int | None = None,
) -> Conv:
    from heterofl.models.conv import Conv

    return Conv(rate, scaler_rate, norm, scale, in_channels, num_classes, stage_exits=stage_exits, depth=depth)


def _resnet(
    rate: float,
    scaler_rate: float,
    *,
    norm: str,
    scale: bool,
    in_channels: int,
    num_classes: int,
    resnet_blocks: tuple[int, ...],
    stage_exits: str | None = None,
    depth: int | None = None,
) -> ResNet:
    from heterofl.models.resnet import ResNet

    blocks = tuple(resnet_blocks)
    return ResNet(
        rate, scaler_rate, norm, scale, in_channels, num_classes, blocks, stage_exits=stage_exits, depth=depth
    )


def _transformer(rate: float, scaler_rate: float, *, num_classes: int) -> Transformer:
    from heterofl.models.transformer import Transformer

    return Transformer(rate, scaler_rate, num_tokens=num_classes)


_IMAGE_KWARGS = ("norm", "scale", "in_channels", "num_classes")
_STAGE_KWARGS = ("stage_exits", "depth")
_MNIST_IMAGE = {"num_classes": 10, "in_channels": 1, "input_size": 28}  # an MNIST image
_SPECS = (
    ModelSpec(
        "conv",
        IMAGE,
        _conv,
        (*_IMAGE_KWARGS, *_STAGE_KWARGS),
        **_MNIST_IMAGE,
        norms=NORMS,
        exits=("classifier",),
        stages=4,
    ),
    ModelSpec(
        "resnet18",
        IMAGE,
        _resnet,
        (*_IMAGE_KWARGS, "resnet_blocks", *_STAGE_KWARGS),
        num_classes=10,
        input_size=32,
        in_channels=3,
        norms=NORMS,
        exits=("linear",),
        stages=4,
    ),
    # No stages: its two encoder layers are not built as stages with exits (its depth is not an axis here).
    # Its LayerNorms are fixed; its controls carry the reference's "bn" (config/paper.yaml), unread.
    ModelSpec(
        "transformer",
        LANGUAGE,
        _transformer,
        ("num_classes",),
        num_classes=33279,
        input_size=64,
        norms=("bn",),
        exits=("decoder2",),
    ),
    ModelSpec(
        "mlp",
        IMAGE,
        "heterofl.models.mlp:build_mlp",
        _IMAGE_KWARGS,
        **_MNIST_IMAGE,
        norms=("bn", "ln", "gn", "none"),
        exits=("classifier",),
    ),
)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def model_names() -> tuple[str, ...]:
    """Every model name, in the registry's order."""
    return tuple(MODELS)


def declared_spec(name: str) -> ModelSpec:
    """The spec of ``name`` as declared, not built: configuration and the report read it without PyTorch.
    An unknown name raises naming the field and the allowed names."""
    spec = MODELS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise HeteroFLError("model", f"{name!r} is unknown", ", ".join(MODELS))
    return spec


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``, verified against what it builds (once per process), for building models."""
    spec = declared_spec(name)
    _verified(spec)
    return spec


@cache
def _verified(spec: ModelSpec) -> None:
    spec.verify()


__all__ = ["BUILD_OPTIONS", "MODELS", "NORMS", "ModelSpec", "declared_spec", "model_names", "model_spec"]

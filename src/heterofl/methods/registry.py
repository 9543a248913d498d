"""The one table of extraction methods: every fact about a method that code outside its own module reads.

The configuration checks (``config.py``), the pipeline schema's ``methods`` enum (``pipeline_config.py``),
the report's order, labels, colours and markers (``report/methods.py``, the methods figure) and the Scaler
default all read :data:`METHODS`; nothing else lists methods. This module imports no torch, so the report
and the planner can read it without loading a training stack. A new method is its own module (a class with
``select`` and ``step_rates``, ``methods/base.py``) plus one :class:`MethodSpec` line here.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

from heterofl.errors import HeteroFLError

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "bluish green": "#009E73",
    "blue": "#0072B2",
    "reddish purple": "#CC79A7",
    "vermillion": "#D55E00",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
}
"""Okabe and Ito's palette, safe for colour-vision deficiency; a method's colour is one of these by name."""


@dataclass(frozen=True)
class MethodSpec:
    """What the rest of the code knows about a method, declared once."""

    name: str
    """The ``method`` setting's value and the run name's ``+tag``."""
    label: str
    """How tables and figures name it."""
    color: str
    """An :data:`OKABE_ITO` colour name, fixed so the method keeps its colour across figures."""
    marker: str
    """A matplotlib marker, fixed for the same reason."""
    implementation: str
    """``module:Class`` of the selection rule (imported on demand: the class needs torch)."""
    trains_unheld_units: bool = False
    """Whether the global model may be wider than every client (model_mode with proportion 0 on the global
    letter): only methods that move the units clients hold (windows, random subsets) still train them all."""
    scaler_by_default: bool = True
    """Whether the Scaler (activations / rate in training) is part of the method as published."""
    unstructured: bool = False
    """Whether clients train the dense model under a per-entry mask (FIARSE) instead of a width-reduced
    submodel: the round trains, aggregates and evaluates such a method through the mask (``federation.py``)."""
    depth_exits: str | None = None
    """Depth-heterogeneous methods: a client's letter names a depth level (:func:`depth_level`) of a model
    built with an exit after every stage, and this says which exits its local loss trains: ``all`` (DepthFL)
    or ``last`` (InclusiveFL). None for the width methods."""

    def __post_init__(self) -> None:
        if self.color not in OKABE_ITO:
            raise ValueError(f"method {self.name}: colour {self.color!r} is not one of {', '.join(OKABE_ITO)}")

    @property
    def hex_color(self) -> str:
        return OKABE_ITO[self.color]


_SPECS = (
    MethodSpec("heterofl", "HeteroFL", "black", "o", "heterofl.methods.heterofl:HeteroFL"),
    MethodSpec("fedrolex", "FedRolex", "orange", "s", "heterofl.methods.fedrolex:FedRolex", trains_unheld_units=True),
    MethodSpec(
        "fd", "Federated Dropout", "bluish green", "^", "heterofl.methods.federated_dropout:FederatedDropout", True
    ),
    MethodSpec("fedecover", "FedEcover", "blue", "D", "heterofl.methods.fedecover:FedEcover", True),
    MethodSpec("fjord", "FjORD", "reddish purple", "v", "heterofl.methods.fjord:FjORD", scaler_by_default=False),
    MethodSpec(
        "fiarse",
        "FIARSE",
        "vermillion",
        "P",
        "heterofl.methods.fiarse:FIARSE",
        scaler_by_default=False,
        unstructured=True,
    ),
    MethodSpec(
        "depthfl",
        "DepthFL",
        "sky blue",
        "X",
        "heterofl.methods.depthfl:DepthFL",
        scaler_by_default=False,
        depth_exits="all",
    ),
    MethodSpec(
        "inclusivefl",
        "InclusiveFL",
        "yellow",
        "*",
        "heterofl.methods.depthfl:InclusiveFL",
        scaler_by_default=False,
        depth_exits="last",
    ),
)
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
"""Every method, in the order tables and figures list them (HeteroFL, the reference, first)."""
METHOD_NAMES = tuple(METHODS)
REFERENCE = "heterofl"
"""The method every other is compared against (paired differences in the method tables)."""


def depth_level(rate: float, global_rate: float, stages: int) -> int:
    """The depth level a letter names under a depth method: the global letter holds all ``stages`` stages,
    each letter below it one stage fewer (with the global model at a: a 4, b 3, c 2, d 1; e names none, 0)."""
    return stages - round(math.log2(global_rate / rate))


def method_spec(name: str) -> MethodSpec:
    """The spec of ``name``; an unknown name raises naming the field and the allowed names."""
    spec = METHODS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise HeteroFLError("method", f"{name!r} is unknown", ", ".join(METHOD_NAMES))
    return spec


def method_class(name: str) -> type:
    """The selection-rule class of ``name`` (imports its module, and so torch)."""
    module, _, attribute = method_spec(name).implementation.partition(":")
    return getattr(importlib.import_module(module), attribute)

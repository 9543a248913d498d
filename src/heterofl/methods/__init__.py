"""The width-heterogeneous FL methods this harness runs side by side; ``method`` in a run's config."""

from __future__ import annotations

from heterofl.errors import HeteroFLError
from heterofl.methods.base import ClientSlot, Method, generator_for
from heterofl.methods.fedecover import FedEcover
from heterofl.methods.federated_dropout import FederatedDropout
from heterofl.methods.fedrolex import FedRolex
from heterofl.methods.fjord import FjORD
from heterofl.methods.heterofl import HeteroFL

METHODS: dict[str, type] = {cls.name: cls for cls in (HeteroFL, FedRolex, FederatedDropout, FedEcover, FjORD)}
METHOD_NAMES = tuple(METHODS)


def make_method(name: str) -> Method:
    if name not in METHODS:
        raise HeteroFLError("method", f"{name!r} is unknown", ", ".join(METHOD_NAMES))
    return METHODS[name]()


__all__ = ["METHODS", "METHOD_NAMES", "ClientSlot", "Method", "generator_for", "make_method"]

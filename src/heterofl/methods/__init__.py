"""The width-heterogeneous FL methods this harness runs side by side; ``method`` in a run's config.

Importing this package loads only the method table (:mod:`heterofl.methods.registry`, no torch); a method's
selection rule is imported when a run asks for it (:func:`make_method`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heterofl.methods.registry import METHOD_NAMES, METHODS, REFERENCE, MethodSpec, method_class, method_spec

if TYPE_CHECKING:
    from heterofl.methods.base import Method


def make_method(name: str) -> Method:
    """A fresh instance of the selection rule of method ``name``."""
    return method_class(name)()


__all__ = ["METHODS", "METHOD_NAMES", "REFERENCE", "MethodSpec", "make_method", "method_class", "method_spec"]

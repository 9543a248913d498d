"""Names a package imports on first use (PEP 562), so importing it loads no PyTorch until a name needs it.

The one helper behind ``heterofl``, ``heterofl.data`` and ``heterofl.models``; it imports only the standard
library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_names(
    namespace: MutableMapping[str, Any], modules: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package whose ``globals()`` is ``namespace``.

    ``modules`` maps each on-demand name to the module that defines it: the name is imported from there on first
    access and kept in ``namespace``; any other missing name raises ``AttributeError``. ``__dir__`` lists
    ``namespace`` and the package's ``__all__``."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(modules[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *namespace["__all__"]])

    return __getattr__, __dir__

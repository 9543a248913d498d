"""Reading YAML settings files: one loader for run configs, ``--set`` values and run folders.

Lives outside the CLI so that library code (``evaluate_run``) can read a run's ``config.yaml`` without
importing the command line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from heterofl.errors import HeteroFLError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice: YAML would keep the last value silently, hiding a typo."""

    def __init__(self, key: object, first: int, second: int) -> None:
        self.key, self.first, self.second = key, first, second
        super().__init__(f"{key!r} is given twice (lines {first} and {second})")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` and ``1e30`` as floats (YAML 1.1 wants ``1.0e-3``, a common trap),
    and refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKeyError(key, seen[key], line)
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of settings; empty, unparsable or non-mapping files are rejected by name."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise HeteroFLError("config", f"cannot read {path} ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise HeteroFLError(
            "config", f"{path} is not UTF-8 text (byte {error.start} cannot be decoded)", "a UTF-8 YAML file"
        ) from None
    try:
        values = load_yaml(text)
    except DuplicateKeyError as error:
        raise HeteroFLError(
            str(error.key), f"is given twice in {path} (lines {error.first} and {error.second})", "one line per key"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise HeteroFLError("config", f"{path} is not valid YAML{where}") from None
    if values is None:
        raise HeteroFLError("config", f"{path} is empty", "a mapping of settings, see config/README.md")
    if not isinstance(values, dict):
        raise HeteroFLError("config", f"{path} holds a {type(values).__name__}, not a mapping of settings")
    return values

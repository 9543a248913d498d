"""Pipeline-config checks that answer in one line per problem, at planning time, before any job runs.

Snakemake's own schema validation prints a jsonschema dump (7 to 145 lines); here every problem is one
line naming the key path, the value and what is allowed: ``experiments.mnist.frac: 2 is above the
maximum (allowed: a number in (0, 1])``. Beyond the schema it refuses what the schema cannot see: a YAML
file that repeats a key (YAML keeps the last silently), settings that would override a run's identity
(dataset, model, clients, seed, split, variant, method), and empty output paths.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

IDENTITY_SETTINGS = {
    "dataset": "the experiment's dataset",
    "model": "the experiment's model",
    "num_users": "the experiment's num_users",
    "frac": "the experiment's frac",
    "seed": "the top-level seeds",
    "control": "the experiment's splits/fix/dynamic/controls",
    "fed": "the experiment's splits",
    "data_split_mode": "the experiment's splits",
    "model_split_mode": "the experiment's fix/dynamic",
    "model_mode": "the experiment's fix/dynamic",
    "norm": "the experiment's norm",
    "scale": "the experiment's scale",
    "mask": "the experiment's mask",
    "non_iid_variant": "the top-level non_iid_variant (the partition files are made with it)",
    "method": "the experiment's methods",
    "data_root": "the top-level data_root",
}
"""Keys that define which run (and which partition) a folder holds: never taken from ``settings``."""


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a repeated key instead of keeping the last one."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` (YAML's merge key) is not a repeated key
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def duplicate_key_problems(paths: list[str | Path]) -> list[str]:
    """One line per config file that repeats a key (Snakemake's loader would silently keep the last)."""
    problems = []
    for path in paths:
        try:
            yaml.load(Path(path).read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.constructor.ConstructorError as error:
            problems.append(f"{path}: {error.problem} (allowed: each key once per mapping)")
        except (OSError, yaml.YAMLError) as error:
            problems.append(f"{path}: cannot be read as YAML ({type(error).__name__})")
    return problems


def _path(config: dict, error: jsonschema.ValidationError) -> str:
    """``experiments.<name>.key`` rather than ``experiments.0.key``, so the user finds the experiment."""
    parts: list[str] = []
    node: Any = config
    for part in error.absolute_path:
        if isinstance(part, int) and isinstance(node, list):
            item = node[part] if part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                parts.append(name)
            elif parts:
                parts[-1] += f"[{part}]"
            else:
                parts.append(f"[{part}]")
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "config"


def _allowed(error: jsonschema.ValidationError) -> str:
    schema, kind = error.schema, error.validator
    if kind == "enum":
        return ", ".join(str(v) for v in error.validator_value)
    if kind == "type":
        return f"a value of type {error.validator_value}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        left = "[" if "minimum" in schema else "("
        right = "]" if "maximum" in schema else ")"
        if high is None:
            return f"a number {'>=' if left == '[' else '>'} {low}"
        return f"a number in {left}{low}, {high}{right}"
    if kind == "pattern":
        return schema.get("description") or f"text matching {error.validator_value}"
    if kind == "additionalProperties":
        return ", ".join(sorted(schema.get("properties", {})))
    if kind == "required":
        return "every one of " + ", ".join(error.validator_value)
    if kind in ("minItems", "minLength"):
        return "a non-empty value"
    if kind == "uniqueItems":
        return "each item once"
    if kind == "oneOf":
        return " or ".join(_describe(s) for s in error.validator_value)
    return schema.get("description", "see config/README.md")


def _describe(schema: dict) -> str:
    if "enum" in schema:
        return ", ".join(str(v) for v in schema["enum"])
    return f"a {schema.get('type', 'value')}"


def _problem(error: jsonschema.ValidationError) -> str:
    kind, value = error.validator, error.instance
    if kind == "additionalProperties":
        extra = sorted(set(value) - set(error.schema.get("properties", {}))) if isinstance(value, dict) else []
        return f"{', '.join(map(repr, extra))} is not a known key"
    if kind == "required":
        missing = [k for k in error.validator_value if not isinstance(value, dict) or k not in value]
        return f"{', '.join(map(repr, missing))} is missing"
    if kind == "type":
        return f"{value!r} is not of type {error.validator_value}"
    if kind in ("minLength", "minItems"):
        return f"{value!r} is empty"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{value!r} is too small"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{value!r} is too large"
    if kind == "uniqueItems":
        return f"{value!r} repeats an item"
    return f"{value!r} is not allowed"


def schema_problems(config: dict, schema: dict) -> list[str]:
    """One line per schema violation: ``key.path: value problem (allowed: ...)``."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(config, e)}: {_problem(e)} (allowed: {_allowed(e)})" for e in errors]


def settings_problems(config: dict) -> list[str]:
    """Settings that would override a run's identity, and output paths that are empty."""
    problems = []
    for key in ("results", "data_root", "cache"):
        value = config.get(key)
        if isinstance(value, str) and not value.strip():
            problems.append(f"{key}: {value!r} is empty (allowed: a folder path, e.g. results)")
    for spec in config.get("experiments") or []:
        if not isinstance(spec, dict):
            continue
        settings = spec.get("settings") or {}
        if not isinstance(settings, dict):
            continue
        for key in sorted(set(settings) & set(IDENTITY_SETTINGS)):
            problems.append(
                f"experiments.{spec.get('name', '?')}.settings.{key}: defines which run a folder holds and cannot"
                f" be overridden in settings (allowed: set it through {IDENTITY_SETTINGS[key]})"
            )
    return problems


def with_registry_enums(schema: dict) -> dict:
    """The schema with the allowed datasets, models and methods taken from their registries, the one place each
    is declared (the schema file names none, so it cannot disagree with them)."""
    from heterofl.data.registry import DATASETS
    from heterofl.methods.registry import METHOD_NAMES
    from heterofl.models.registry import MODELS

    schema = copy.deepcopy(schema)
    experiment = schema["properties"]["experiments"]["items"]["properties"]
    experiment["dataset"]["enum"] = list(DATASETS)
    experiment["model"]["enum"] = list(MODELS)
    experiment["methods"]["items"]["enum"] = list(METHOD_NAMES)
    return schema


def check(config: dict, schema_path: str | Path, configfiles: list[str | Path]) -> list[str]:
    """Every problem of a pipeline config, one line each; empty when the config is usable."""
    schema = with_registry_enums(yaml.safe_load(Path(schema_path).read_text()))
    problems = duplicate_key_problems(configfiles)
    problems += schema_problems(config, schema)
    problems += settings_problems(config)
    return problems

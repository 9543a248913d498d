"""A run's identity, derived in one place: what names its folder, its Snakemake job and its table rows.

The identity is the dataset, the model, the *run name* and the seed. The run name is the reference's
control string (``1_100_0.1_iid_fix_a2-b8_bn_1_1``) followed by one ``+tag`` for every identity setting
that is not at its default, e.g. ``1_20_0.25_iid_dynamic_a1-e1_bn_1_1+fedrolex``. A HeteroFL run with
default settings is named by its control string alone, so adding a setting here never renames (or
invalidates) the runs that do not use it.

Hyperparameters that an experiment sets for all of its runs (rounds, lr, ...) are recorded in the run's
``config.yaml`` and config hash but are not part of the name: within one results root a run name has one
definition (``grid.expand_runs`` refuses two experiments that define it differently).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from heterofl.config import ExperimentConfig, field_default
from heterofl.results import run_key_of

RUN_NAME_PATTERN = r"[01]_[^/+]+(\+[A-Za-z0-9_.-]+)*"
"""A run name: a control string and optional ``+tags`` (the Snakemake wildcard constraint)."""


def identity_settings() -> dict[str, Callable[[Any], str]]:
    """The settings that select a variant of the algorithm or model (declared with a ``tag`` on the field,
    ``config.setting``), in tag order, with how each is spelled as a ``+tag``."""
    tagged = [f for f in dataclasses.fields(ExperimentConfig) if f.metadata.get("tag") is not None]
    return {f.name: f.metadata["tag"] for f in sorted(tagged, key=lambda f: f.metadata["tag_order"])}


def run_tags(config: ExperimentConfig) -> list[str]:
    defaults = {f.name: field_default(f) for f in dataclasses.fields(ExperimentConfig)}
    return [
        spell(getattr(config, name))
        for name, spell in identity_settings().items()
        if getattr(config, name) != defaults[name]
    ]


def run_name(config: ExperimentConfig) -> str:
    """The control string plus a ``+tag`` per non-default identity setting."""
    return "+".join([config.control.format(), *run_tags(config)])


def run_key(config: ExperimentConfig) -> str:
    """A run's path below a results root's ``runs/`` (:data:`heterofl.results.RUN_KEY_PATTERN`)."""
    return run_key_of(config.dataset, config.model, run_name(config), config.seed)


def control_of(name: str) -> str:
    """The control string of a run name (the part before the first ``+``)."""
    return name.split("+", 1)[0]


def tags_of(name: str) -> list[str]:
    """The ``+tags`` of a run name, in order (empty for a default HeteroFL run)."""
    return name.split("+")[1:]


def is_run_name(name: str) -> bool:
    return re.fullmatch(RUN_NAME_PATTERN, name) is not None

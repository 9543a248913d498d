"""The one table of datasets: kind of task, default model, sizes and the split kinds each supports.

Everything that used to compare a dataset name with a literal (config validation, the task a dataset
trains, report metrics, the pipeline's wildcard pattern and planning checks) asks this table instead.
It imports nothing heavier than :mod:`heterofl.errors`, so configuration and the pipeline can read it
without loading any data code; the loaders themselves stay in :mod:`heterofl.data.datasets`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from heterofl.errors import HeteroFLError

IMAGE = "image"
LANGUAGE = "language"
SPLIT_KINDS = ("iid", "non-iid", "dirichlet", "none")


def split_kind(data_split_mode: str) -> str:
    """The family of a split mode: ``non-iid-2`` -> ``non-iid``, ``dirichlet-0.1`` -> ``dirichlet``."""
    for kind in ("non-iid", "dirichlet"):
        if data_split_mode.startswith(kind):
            return kind
    return data_split_mode


@dataclass(frozen=True)
class DatasetSpec:
    """What the code needs to know about a dataset before loading it.

    ``num_classes`` is the nominal label count (for WikiText2 the reference's vocabulary size; the loaded
    vocabulary is what a run uses). ``in_channels`` is the image channel count, 1 for token data.
    """

    name: str
    kind: str
    model: str
    num_classes: int
    in_channels: int
    split_kinds: tuple[str, ...] = SPLIT_KINDS

    @property
    def is_language(self) -> bool:
        return self.kind == LANGUAGE

    def allows_split(self, data_split_mode: str) -> bool:
        return split_kind(data_split_mode) in self.split_kinds


_SPECS = (
    DatasetSpec("MNIST", IMAGE, model="conv", num_classes=10, in_channels=1),
    DatasetSpec("MNIST5k", IMAGE, model="conv", num_classes=10, in_channels=1),
    DatasetSpec("CIFAR10", IMAGE, model="resnet18", num_classes=10, in_channels=3),
    DatasetSpec("CIFAR100", IMAGE, model="resnet18", num_classes=100, in_channels=3),
    # one row per client: label-skewed splits make no sense for batchified token rows
    DatasetSpec(
        "WikiText2", LANGUAGE, model="transformer", num_classes=33279, in_channels=1, split_kinds=("iid", "none")
    ),
)
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def dataset_names() -> tuple[str, ...]:
    """Every dataset name, in the registry's order."""
    return tuple(DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; an unknown name raises naming the field and the allowed names."""
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise HeteroFLError("dataset", f"{name!r} is unknown", ", ".join(DATASETS))
    return spec


def is_language(name: str) -> bool:
    """True for a language-modelling dataset; any other name (known or not) is treated as images."""
    spec = DATASETS.get(name) if isinstance(name, str) else None
    return spec is not None and spec.is_language


def supports_split(name: str, data_split_mode: str) -> bool:
    """True when ``name`` is a known dataset whose split kinds include ``data_split_mode``'s."""
    spec = DATASETS.get(name) if isinstance(name, str) else None
    return spec is not None and spec.allows_split(data_split_mode)


def wildcard_pattern() -> str:
    """A regular expression matching exactly the dataset names (Snakemake's ``dataset`` wildcard)."""
    return "|".join(re.escape(name) for name in DATASETS)


__all__ = [
    "DATASETS",
    "IMAGE",
    "LANGUAGE",
    "SPLIT_KINDS",
    "DatasetSpec",
    "dataset_names",
    "dataset_spec",
    "is_language",
    "split_kind",
    "supports_split",
    "wildcard_pattern",
]

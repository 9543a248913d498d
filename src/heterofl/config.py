"""Typed, immutable experiment configuration.

The reference packs nine settings into a control string (``1_100_0.1_iid_fix_a2-b8_bn_1_1``, spec
section 1) and everything else into a global dict. Here the control string parses into :class:`Control`,
the full run into :class:`ExperimentConfig`; both are frozen and validated once, at the edge, so bad input
fails before any data is loaded or any model is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from heterofl.errors import HeteroFLError
from heterofl.rates import SPLIT_MODES, ModelMode

CONTROL_FIELDS = (
    "fed",
    "num_users",
    "frac",
    "data_split_mode",
    "model_split_mode",
    "model_mode",
    "norm",
    "scale",
    "mask",
)
NORMS = ("bn", "in", "ln", "gn", "none")
DATASETS = ("MNIST", "MNIST5k", "CIFAR10", "WikiText2")
MODELS = ("conv", "resnet18", "transformer")
MODEL_OF_DATASET = {"MNIST": "conv", "MNIST5k": "conv", "CIFAR10": "resnet18", "WikiText2": "transformer"}
ENGINES = ("sequential", "batched", "auto")
SPLIT_PATTERN = re.compile(r"^(iid|none|non-iid-(\d+)|dirichlet-(\d+(\.\d+)?|\.\d+))$")
SPLIT_ALLOWED = "iid, non-iid-K (K >= 1 labels per client), dirichlet-A (A > 0), none"


def _parse_int_flag(name: str, text: str) -> int:
    if text not in ("0", "1"):
        raise HeteroFLError(name, f"{text!r} is not a flag", "0 or 1")
    return int(text)


def validate_split_mode(text: str) -> str:
    """Check a data split mode string; returns it unchanged."""
    match = SPLIT_PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise HeteroFLError("data_split_mode", f"{text!r} is not a split mode", SPLIT_ALLOWED)
    if match.group(2) is not None and int(match.group(2)) < 1:
        raise HeteroFLError("data_split_mode", f"{text!r} needs K >= 1", SPLIT_ALLOWED)
    if match.group(3) is not None and float(match.group(3)) <= 0:
        raise HeteroFLError("data_split_mode", f"{text!r} needs A > 0", SPLIT_ALLOWED)
    return text


@dataclass(frozen=True)
class Control:
    """The reference's nine control fields, typed."""

    fed: int = 1
    num_users: int = 100
    frac: float = 0.1
    data_split_mode: str = "iid"
    model_split_mode: str = "fix"
    model_mode: str = "a1"
    norm: str = "bn"
    scale: int = 1
    mask: int = 1

    def __post_init__(self) -> None:
        if self.fed not in (0, 1):
            raise HeteroFLError("fed", f"{self.fed!r} is not allowed", "0 or 1")
        if isinstance(self.num_users, bool) or not isinstance(self.num_users, int) or self.num_users < 1:
            raise HeteroFLError("num_users", f"{self.num_users!r} is not a positive integer", "integer >= 1")
        if isinstance(self.frac, bool) or not isinstance(self.frac, int | float) or not 0 < self.frac <= 1:
            raise HeteroFLError("frac", f"{self.frac!r} is out of range", "a number in (0, 1]")
        validate_split_mode(self.data_split_mode)
        if self.model_split_mode not in SPLIT_MODES:
            raise HeteroFLError("model_split_mode", f"{self.model_split_mode!r} is unknown", ", ".join(SPLIT_MODES))
        ModelMode.parse(self.model_mode)
        if self.norm not in NORMS:
            raise HeteroFLError("norm", f"{self.norm!r} is unknown", ", ".join(NORMS))
        for name in ("scale", "mask"):
            if getattr(self, name) not in (0, 1):
                raise HeteroFLError(name, f"{getattr(self, name)!r} is not a flag", "0 or 1")
        if self.fed == 0 and self.data_split_mode != "none":
            raise HeteroFLError("data_split_mode", "centralized runs (fed 0) need split mode 'none'", "none")
        if self.fed == 1 and self.data_split_mode == "none":
            raise HeteroFLError("data_split_mode", "federated runs (fed 1) need a partition", SPLIT_ALLOWED)

    @classmethod
    def parse(cls, text: str) -> Control:
        """Parse ``F_U_P_D_S_M_N_SC_MK``; every bad field raises naming the field and allowed values."""
        parts = text.split("_") if isinstance(text, str) else []
        if len(parts) != len(CONTROL_FIELDS):
            raise HeteroFLError(
                "control",
                f"{text!r} has {len(parts)} '_'-separated fields, expected {len(CONTROL_FIELDS)}",
                "_".join(CONTROL_FIELDS) + ", e.g. 1_100_0.1_iid_fix_a2-b8_bn_1_1",
            )
        raw = dict(zip(CONTROL_FIELDS, parts, strict=True))
        try:
            num_users = int(raw["num_users"])
        except ValueError:
            raise HeteroFLError("num_users", f"{raw['num_users']!r} is not an integer", "integer >= 1") from None
        try:
            frac = float(raw["frac"])
        except ValueError:
            raise HeteroFLError("frac", f"{raw['frac']!r} is not a number", "a number in (0, 1]") from None
        return cls(
            fed=_parse_int_flag("fed", raw["fed"]),
            num_users=num_users,
            frac=frac,
            data_split_mode=raw["data_split_mode"],
            model_split_mode=raw["model_split_mode"],
            model_mode=raw["model_mode"],
            norm=raw["norm"],
            scale=_parse_int_flag("scale", raw["scale"]),
            mask=_parse_int_flag("mask", raw["mask"]),
        )

    def format(self) -> str:
        """The canonical control string; ``Control.parse(c.format()) == c``."""
        values = [getattr(self, name) for name in CONTROL_FIELDS]
        values[2] = format(self.frac, "g")
        return "_".join(str(v) for v in values)

    @property
    def mode(self) -> ModelMode:
        return ModelMode.parse(self.model_mode)


# Per-dataset hyperparameters of the reference (spec section 2), keyed by (dataset family, split kind).
_REFERENCE_HYPER: dict[tuple[str, str], dict[str, Any]] = {
    ("MNIST", "iid"): dict(
        lr=0.01, rounds=200, local_epochs=5, batch_size_train=10, batch_size_test=50, milestones=(100,)
    ),
    ("MNIST", "non-iid"): dict(
        lr=0.01, rounds=400, local_epochs=5, batch_size_train=10, batch_size_test=50, milestones=(200,)
    ),
    ("MNIST", "none"): dict(
        lr=0.01, rounds=200, local_epochs=1, batch_size_train=100, batch_size_test=500, milestones=(100,)
    ),
    ("CIFAR10", "iid"): dict(
        lr=0.1, rounds=400, local_epochs=5, batch_size_train=10, batch_size_test=50, milestones=(150, 250)
    ),
    ("CIFAR10", "non-iid"): dict(
        lr=0.1, rounds=800, local_epochs=5, batch_size_train=10, batch_size_test=50, milestones=(300, 500)
    ),
    ("CIFAR10", "none"): dict(
        lr=0.1, rounds=400, local_epochs=1, batch_size_train=100, batch_size_test=500, milestones=(150, 250)
    ),
    ("WikiText2", "iid"): dict(
        lr=0.1, rounds=200, local_epochs=1, batch_size_train=100, batch_size_test=10, milestones=(50, 100)
    ),
    ("WikiText2", "none"): dict(
        lr=0.1, rounds=100, local_epochs=1, batch_size_train=100, batch_size_test=100, milestones=(25, 50)
    ),
}


def reference_hyperparameters(dataset: str, data_split_mode: str) -> dict[str, Any]:
    """The reference's lr, rounds, epochs, batch sizes and milestones for a dataset and split."""
    family = "MNIST" if dataset.startswith("MNIST") else dataset
    kind = data_split_mode if data_split_mode in ("iid", "none") else "non-iid"
    key = (family, kind)
    if key not in _REFERENCE_HYPER:
        key = (family, "iid")
    return dict(_REFERENCE_HYPER[key])


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one training run. Unset hyperparameters take the reference's values."""

    dataset: str = "MNIST5k"
    model: str = ""
    control: Control = field(default_factory=Control)
    seed: int = 0
    rounds: int | None = None
    local_epochs: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    gamma: float = 0.1
    milestones: tuple[int, ...] | None = None
    batch_size_train: int | None = None
    batch_size_test: int | None = None
    clip_norm: float = 1.0
    eval_every: int = 1
    eval_rates: str = "all"
    last_k: int = 5
    stats_batch_size: int = 1000
    resnet_blocks: tuple[int, ...] = (1, 1, 1, 2)
    non_iid_variant: str = "reference"
    engine: str = "auto"
    checkpoint_every: int = 1
    data_root: str = "data"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise HeteroFLError("dataset", f"{self.dataset!r} is unknown", ", ".join(DATASETS))
        if not self.model:
            object.__setattr__(self, "model", MODEL_OF_DATASET[self.dataset])
        if self.model not in MODELS:
            raise HeteroFLError("model", f"{self.model!r} is unknown", ", ".join(MODELS))
        if (self.model == "transformer") != (self.dataset == "WikiText2"):
            raise HeteroFLError(
                "model", f"{self.model!r} does not fit dataset {self.dataset!r}", "transformer for WikiText2 only"
            )
        if not isinstance(self.control, Control):
            object.__setattr__(self, "control", Control.parse(self.control))
        if self.dataset == "WikiText2" and self.control.data_split_mode not in ("iid", "none"):
            raise HeteroFLError("data_split_mode", "WikiText2 supports only one-row-per-client splits", "iid, none")
        defaults = reference_hyperparameters(self.dataset, self.control.data_split_mode)
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("milestones", "resnet_blocks"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise HeteroFLError(name, f"{value!r} is not a list of integers", "a list of integers")
            object.__setattr__(self, name, tuple(value))
        self._check_ranges()

    def _check_ranges(self) -> None:
        positive_ints = (
            "rounds",
            "local_epochs",
            "batch_size_train",
            "batch_size_test",
            "eval_every",
            "last_k",
            "stats_batch_size",
            "checkpoint_every",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HeteroFLError(name, f"{value!r} is not a positive integer", "integer >= 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise HeteroFLError("seed", f"{self.seed!r} is not a non-negative integer", "integer >= 0")
        for name in ("lr", "clip_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise HeteroFLError(name, f"{value!r} is not a positive number", "a finite number > 0")
        for name in ("momentum", "weight_decay", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise HeteroFLError(name, f"{value!r} is out of range", "a number in [0, 1]")
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise HeteroFLError("milestones", f"{list(self.milestones)} is not increasing", "increasing rounds >= 1")
        if self.eval_rates not in ("all", "global"):
            raise HeteroFLError("eval_rates", f"{self.eval_rates!r} is unknown", "all, global")
        if self.engine not in ENGINES:
            raise HeteroFLError("engine", f"{self.engine!r} is unknown", ", ".join(ENGINES))
        if self.non_iid_variant not in ("reference", "distinct"):
            raise HeteroFLError("non_iid_variant", f"{self.non_iid_variant!r} is unknown", "reference, distinct")
        if len(self.resnet_blocks) != 4 or any(b < 1 for b in self.resnet_blocks):
            raise HeteroFLError(
                "resnet_blocks",
                f"{list(self.resnet_blocks)} is not 4 positive counts",
                "[1, 1, 1, 2] (paper) or [2, 2, 2, 2]",
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExperimentConfig:
        """Build from a plain mapping (YAML), rejecting unknown keys by name."""
        if not isinstance(values, dict):
            raise HeteroFLError("config", f"expected a mapping of settings, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} | set(CONTROL_FIELDS)
        unknown = sorted(set(values) - known)
        if unknown:
            raise HeteroFLError(unknown[0], "is not a known setting", ", ".join(sorted(known)))
        values = dict(values)
        control = values.pop("control", None)
        overrides = {k: values.pop(k) for k in CONTROL_FIELDS if k in values}
        if isinstance(control, str) or control is None:
            base = Control.parse(control) if control else Control()
        elif isinstance(control, Control):
            base = control
        else:
            raise HeteroFLError("control", f"{control!r} is not a control string", "e.g. 1_100_0.1_iid_fix_a1_bn_1_1")
        control_obj = dataclasses.replace(base, **overrides) if overrides else base
        for name in ("milestones", "resnet_blocks"):
            if name in values and not isinstance(values[name], list | tuple):
                raise HeteroFLError(name, f"{values[name]!r} is not a list", "a list of integers")
        return cls(control=control_obj, **values)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-friendly values; ``from_dict(to_dict())`` gives the same config."""
        out = dataclasses.asdict(self)
        out["control"] = self.control.format()
        out["milestones"] = list(self.milestones)
        out["resnet_blocks"] = list(self.resnet_blocks)
        return out

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    @property
    def mode(self) -> ModelMode:
        return self.control.mode

    @property
    def model_tag(self) -> str:
        """The reference's tag, ``{seed}_{data}_label_{model}_{control}``."""
        return f"{self.seed}_{self.dataset}_label_{self.model}_{self.control.format()}"

    def result_fields(self) -> dict[str, Any]:
        """The settings that change results (not where data lives, not how often we checkpoint)."""
        out = self.to_dict()
        for name in ("data_root", "checkpoint_every"):
            out.pop(name)
        return out

    def config_hash(self) -> str:
        blob = json.dumps(self.result_fields(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

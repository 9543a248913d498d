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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from heterofl.data.registry import DATASETS as DATASET_SPECS
from heterofl.data.registry import dataset_spec
from heterofl.data.splits import SPLIT_ALLOWED, validate_split_mode
from heterofl.errors import HeteroFLError
from heterofl.methods.registry import METHODS, depth_level, method_spec
from heterofl.models.registry import MODELS as MODEL_SPECS
from heterofl.models.registry import declared_spec
from heterofl.rates import SPLIT_MODES, ModelMode, letters_up_to
from heterofl.server_update import SERVER_UPDATES

FLEET_NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""A fleet name fits a run name's ``+tag`` (``identity.RUN_NAME_PATTERN``)."""

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
DATASETS = tuple(DATASET_SPECS)  # names, in registry order (heterofl.data.registry holds the specs)
MODELS = tuple(MODEL_SPECS)  # names, in registry order (heterofl.models.registry holds the specs)
MODEL_OF_DATASET = {name: spec.model for name, spec in DATASET_SPECS.items()}
ENGINES = ("sequential", "batched", "auto")
MAX_INT64 = 2**63 - 1


def _parse_int_flag(name: str, text: str) -> int:
    if text not in ("0", "1"):
        raise HeteroFLError(name, f"{text!r} is not a flag", "0 or 1")
    return int(text)


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
        if isinstance(text, str) and (not text.isascii() or any(c.isspace() or not c.isprintable() for c in text)):
            raise HeteroFLError(
                "control",
                f"{text!r} holds whitespace or characters outside ASCII (digits must be 0-9)",
                "_".join(CONTROL_FIELDS) + ", e.g. 1_100_0.1_iid_fix_a2-b8_bn_1_1",
            )
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


# Datasets that borrow another's defaults: MNIST5k is MNIST's subset; HeteroFL's reference has no CIFAR-100
# setting, so CIFAR100 starts from CIFAR10's (same images and model; a published CIFAR-100 setup such as
# DepthFL's in config/methods_published.yaml sets its own values).
_HYPER_FAMILY = {"MNIST5k": "MNIST", "CIFAR100": "CIFAR10"}


def reference_hyperparameters(dataset: str, data_split_mode: str) -> dict[str, Any]:
    """The reference's lr, rounds, epochs, batch sizes and milestones for a dataset and split."""
    family = _HYPER_FAMILY.get(dataset, dataset)
    kind = data_split_mode if data_split_mode in ("iid", "none") else "non-iid"
    key = (family, kind)
    if key not in _REFERENCE_HYPER:
        key = (family, "iid")
    return dict(_REFERENCE_HYPER[key])


PRECISIONS = ("fp32", "tf32", "bf16")
"""Arithmetic of local training: full fp32 (the reference's), TF32 matmuls/convolutions (CUDA only), or bf16
autocast. Static BN and evaluation always run in fp32."""
HASHED = "always"
HASHED_WHEN_SET = "when set"
NOT_HASHED = "never"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    hashed: str = HASHED,
    tag: Callable[[Any], str] | None = None,
    tag_order: int = 0,
) -> Any:
    """A field of :class:`ExperimentConfig` that declares, on itself, how it enters a run's identity.

    ``hashed``: whether it is part of the config hash (:meth:`ExperimentConfig.result_fields`): ``always``;
    ``when set`` (only when it differs from its default: every field added after the first release, so that
    adding one never changes the hash, and so never invalidates the checkpoints or cached results, of runs
    that do not use it); ``never`` (where data lives, how often to checkpoint). ``tag``: how a non-default
    value is spelled as a ``+tag`` of the run name (``identity.run_name``), for settings that select a variant
    of the algorithm or model; the tags appear in ``tag_order``.
    """
    if hashed not in (HASHED, HASHED_WHEN_SET, NOT_HASHED):
        raise ValueError(f"hashed={hashed!r}: use {HASHED!r}, {HASHED_WHEN_SET!r} or {NOT_HASHED!r}")
    metadata = {"hashed": hashed, "tag": tag, "tag_order": tag_order}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def field_default(item: dataclasses.Field) -> Any:
    return item.default if item.default is not dataclasses.MISSING else item.default_factory()


def _blocks(value: tuple[int, ...]) -> str:
    return "blocks" + "".join(str(b) for b in value)


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
    stats_batch_size: int = 100
    resnet_blocks: tuple[int, ...] = setting((1, 1, 1, 2), tag=_blocks, tag_order=30)
    non_iid_variant: str = "reference"
    engine: str = "auto"
    checkpoint_every: int = setting(1, hashed=NOT_HASHED)
    data_root: str = setting("data", hashed=NOT_HASHED)
    # Fields added after the first release: each must have a default that reproduces the old behaviour and
    # be declared ``hashed=HASHED_WHEN_SET`` (tests/test_identity.py checks both against the first release).
    method: str = setting("heterofl", hashed=HASHED_WHEN_SET, tag=str, tag_order=10)
    fjord_scaler: bool = setting(False, hashed=HASHED_WHEN_SET, tag=lambda value: "scaler", tag_order=20)
    precision: str = setting("fp32", hashed=HASHED_WHEN_SET, tag=str, tag_order=40)
    server_optimizer: str = setting("mean", hashed=HASHED_WHEN_SET, tag=lambda value: f"server-{value}", tag_order=50)
    """How the server turns the clients' mean into the new global model (``server_update.SERVER_UPDATES``)."""
    server_lr: float = setting(1.0, hashed=HASHED_WHEN_SET, tag=lambda value: f"slr{value:g}", tag_order=51)
    server_momentum: float = setting(0.0, hashed=HASHED_WHEN_SET, tag=lambda value: f"smom{value:g}", tag_order=52)
    fleet: str | None = setting(None, hashed=HASHED_WHEN_SET, tag=lambda value: f"fleet-{value}", tag_order=60)
    """The device fleet on the simulated clock (``devices.py``, ``clock.py``); None: no clock, as before."""
    deadline: float | None = setting(
        None, hashed=HASHED_WHEN_SET, tag=lambda value: f"deadline{value:g}s", tag_order=61
    )
    """Seconds of simulated time after which a client's update is lost (only with a fleet)."""
    overcommit: float = setting(1.0, hashed=HASHED_WHEN_SET, tag=lambda value: f"oc{value:g}", tag_order=62)
    """Sample ceil(overcommit x K) clients and keep the first K to finish (only with a fleet)."""
    capability_widths: bool = setting(False, hashed=HASHED_WHEN_SET, tag=lambda value: "capability", tag_order=63)
    """Each sampled client trains the largest rate of the model mode its device finishes within the deadline
    this round (proportions of the mode are not used); only with a fleet and a deadline."""
    feddyn_alpha: float = setting(0.0, hashed=HASHED_WHEN_SET, tag=lambda value: f"feddyn{value:g}", tag_order=12)
    """FedDyn's α for DepthFL (``feddyn.py``); 0: off, the DepthFL paper's "DepthFL (FedAvg)"; its code uses 0.1."""

    def __post_init__(self) -> None:
        data = dataset_spec(self.dataset)
        if not self.model:
            object.__setattr__(self, "model", data.model)
        if declared_spec(self.model).kind != data.kind:
            fitting = ", ".join(name for name, spec in MODEL_SPECS.items() if spec.kind == data.kind)
            raise HeteroFLError("model", f"{self.model!r} does not fit dataset {self.dataset!r}", fitting)
        if not isinstance(self.control, Control):
            object.__setattr__(self, "control", Control.parse(self.control))
        norms = declared_spec(self.model).norms  # the norms the model declares (heterofl.models.registry)
        if self.control.norm not in norms:
            raise HeteroFLError("norm", f"{self.control.norm!r} is not a norm of {self.model!r}", ", ".join(norms))
        if not data.allows_split(self.control.data_split_mode):
            raise HeteroFLError(
                "data_split_mode",
                f"{self.dataset} does not support {self.control.data_split_mode!r} splits",
                ", ".join(data.split_kinds),
            )
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
            if value > MAX_INT64:  # torch, numpy and the CSVs hold 64-bit integers
                raise HeteroFLError(name, f"{value} does not fit in 64 bits", f"integer in 1..{MAX_INT64}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_INT64:
            raise HeteroFLError("seed", f"{self.seed!r} is not a non-negative 64-bit integer", f"0..{MAX_INT64}")
        if not isinstance(self.data_root, str) or not self.data_root.strip():
            raise HeteroFLError("data_root", f"{self.data_root!r} is not a folder path", "a non-empty string")
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
        spec = method_spec(self.method)
        if not isinstance(self.fjord_scaler, bool):
            raise HeteroFLError("fjord_scaler", f"{self.fjord_scaler!r} is not a boolean", "true or false")
        if self.fjord_scaler and self.method != "fjord":
            raise HeteroFLError("fjord_scaler", f"is set but method is {self.method!r}", "only with method: fjord")
        if self.mode.proportions[0] == 0 and not spec.trains_unheld_units:
            movers = ", ".join(m.name for m in METHODS.values() if m.trains_unheld_units)
            raise HeteroFLError(
                "model_mode",
                f"{self.control.model_mode!r} gives no client the global rate, so method {self.method!r} would"
                " never train the global model's outer units",
                f"a positive proportion on the global letter, or method {movers}",
            )
        if spec.depth_exits is not None:
            self._check_depth_levels()
        self._check_server_update()
        self._check_feddyn()
        self._check_clock()
        if self.precision not in PRECISIONS:
            raise HeteroFLError("precision", f"{self.precision!r} is unknown", ", ".join(PRECISIONS))
        if self.non_iid_variant not in ("reference", "distinct"):
            raise HeteroFLError("non_iid_variant", f"{self.non_iid_variant!r} is unknown", "reference, distinct")
        if len(self.resnet_blocks) != 4 or any(b < 1 for b in self.resnet_blocks):
            raise HeteroFLError(
                "resnet_blocks",
                f"{list(self.resnet_blocks)} is not 4 positive counts",
                "[1, 1, 1, 2] (paper) or [2, 2, 2, 2]",
            )

    def _check_depth_levels(self) -> None:
        """A depth method needs a model with stages, and every letter of the model mode must name a depth."""
        stages = declared_spec(self.model).stages
        if not stages:
            staged = ", ".join(name for name, spec in MODEL_SPECS.items() if spec.stages)
            raise HeteroFLError("model", f"{self.model!r} has no stages for method {self.method!r}", staged)
        mode = self.mode
        levels = {r: depth_level(r, mode.global_rate, stages) for r in mode.rates}
        if min(levels.values()) < 1:
            letters = letters_up_to(mode.global_rate)[:stages]
            usable = [f"{letter} ({stages - i} stages)" for i, letter in enumerate(letters)]
            raise HeteroFLError(
                "model_mode",
                f"{self.control.model_mode!r} names a depth below one stage under method {self.method!r}"
                f" ({self.model} has {stages} stages; the global letter holds all, each letter below one fewer)",
                ", ".join(usable),
            )

    def _check_clock(self) -> None:
        if self.fleet is not None and (not isinstance(self.fleet, str) or not FLEET_NAME.fullmatch(self.fleet)):
            raise HeteroFLError("fleet", f"{self.fleet!r} is not a fleet name", "letters, digits, '.', '-', '_'")
        deadline, overcommit = self.deadline, self.overcommit
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int | float) or not 0 < deadline < math.inf
        ):
            raise HeteroFLError("deadline", f"{deadline!r} is not a positive number of seconds", "a finite number > 0")
        if isinstance(overcommit, bool) or not isinstance(overcommit, int | float) or not 1 <= overcommit <= 10:
            raise HeteroFLError("overcommit", f"{overcommit!r} is out of range", "a number in [1, 10]")
        if not isinstance(self.capability_widths, bool):
            raise HeteroFLError("capability_widths", f"{self.capability_widths!r} is not a boolean", "true or false")
        if self.capability_widths and self.deadline is None:
            raise HeteroFLError("capability_widths", "is set but no deadline is", "with fleet and deadline")
        for name, default in (("deadline", None), ("overcommit", 1.0), ("capability_widths", False)):
            if getattr(self, name) != default and self.fleet is None:
                raise HeteroFLError(name, "is set but no fleet is", "only with fleet: <a fleet of the device table>")

    def _check_feddyn(self) -> None:
        alpha = self.feddyn_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < math.inf:
            raise HeteroFLError("feddyn_alpha", f"{alpha!r} is not a number >= 0", "0 (off) or a finite number > 0")
        if alpha and self.method != "depthfl":
            raise HeteroFLError("feddyn_alpha", f"is set but method is {self.method!r}", "only with method: depthfl")
        if alpha and self.server_optimizer != "mean":
            raise HeteroFLError(
                "feddyn_alpha",
                f"is set with server_optimizer {self.server_optimizer!r}: FedDyn makes its own server step",
                "only with server_optimizer: mean",
            )

    def _check_server_update(self) -> None:
        if self.server_optimizer not in SERVER_UPDATES:
            raise HeteroFLError("server_optimizer", f"{self.server_optimizer!r} is unknown", ", ".join(SERVER_UPDATES))
        lr, momentum = self.server_lr, self.server_momentum
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise HeteroFLError("server_lr", f"{lr!r} is not a positive number", "a finite number > 0")
        if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0 <= momentum < 1:
            raise HeteroFLError("server_momentum", f"{momentum!r} is out of range", "a number in [0, 1)")
        for name, default in (("server_lr", 1.0), ("server_momentum", 0.0)):
            if getattr(self, name) != default and self.server_optimizer != "sgd":
                raise HeteroFLError(
                    name, f"is set but server_optimizer is {self.server_optimizer!r}", "only with server_optimizer: sgd"
                )

    @property
    def evaluations(self) -> int:
        """How many rounds evaluate: every ``eval_every``-th and always the last (``Federation.run_round``)."""
        return -(-self.rounds // self.eval_every)

    def check_requested(self, given: Iterable[str]) -> None:
        """Refuse settings of a new request that contradict each other.

        Only the settings named in ``given`` (those the user wrote: YAML file, ``--set``, the pipeline's
        ``settings``) are checked, against the final values of the others: the reference's milestones for
        200 rounds are not a contradiction of a 2-round test run that leaves them unset. A finished run's
        ``config.yaml`` (every setting written out) is read without this check, so it stays readable.
        """
        given = set(given)
        if "milestones" in given:
            for milestone in self.milestones:
                if milestone > self.rounds:
                    raise HeteroFLError(
                        "milestones",
                        f"{milestone} is past rounds {self.rounds}: the learning rate would never drop there",
                        f"increasing rounds in 1..{self.rounds}, or [] for a constant learning rate",
                    )
        if "eval_every" in given and self.eval_every > self.rounds:
            raise HeteroFLError(
                "eval_every",
                f"{self.eval_every} is past rounds {self.rounds}: the run would evaluate only at its last round",
                f"integer in 1..{self.rounds}",
            )
        if "last_k" in given and self.last_k > self.evaluations:
            raise HeteroFLError(
                "last_k",
                f"{self.last_k} is more than the {self.evaluations} evaluations the run makes "
                f"(rounds {self.rounds}, eval_every {self.eval_every})",
                f"integer in 1..{self.evaluations}",
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any], requested: bool = False) -> ExperimentConfig:
        """Build from a plain mapping (YAML), rejecting unknown keys by name.

        ``requested``: a new request (the CLI, pipeline planning), whose given settings are also checked
        against each other (:meth:`check_requested`); False for a finished run's ``config.yaml``.
        """
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
        config = cls(control=control_obj, **values)
        if requested:
            config.check_requested(values)
        return config

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

    @property
    def uses_scaler(self) -> bool:
        """The Scaler is on when the control string asks for it and the method uses it (FjORD: if asked)."""
        return bool(self.control.scale) and (method_spec(self.method).scaler_by_default or self.fjord_scaler)

    def result_fields(self) -> dict[str, Any]:
        """The settings that change results (not where data lives, not how often we checkpoint).

        Each field says on itself whether it is hashed (:func:`setting`): fields added after the first release
        appear only when they differ from their default, so a run that does not use them keeps its config hash
        (and its checkpoint stays valid).
        """
        out = self.to_dict()
        for item in dataclasses.fields(self):
            hashed = item.metadata.get("hashed", HASHED)
            if hashed == NOT_HASHED or (hashed == HASHED_WHEN_SET and getattr(self, item.name) == field_default(item)):
                out.pop(item.name)
        return out

    def config_hash(self) -> str:
        blob = json.dumps(self.result_fields(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

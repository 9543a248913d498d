"""Experiment grids: expand a pipeline config into one run per (configuration, seed).

The paper's grid (spec section 9) is generated rather than listed: per data split, 5 single rates (fix),
the 26 combinations of 2-5 letters (dynamic) and 90 interpolations X_i-Y_{10-i} (fix): 121 control names.
Every expanded run is validated as an :class:`ExperimentConfig` here, so a typo fails the dry run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from heterofl.config import Control, ExperimentConfig
from heterofl.data.partition import check_shard_counts
from heterofl.data.registry import DATASETS, supports_split
from heterofl.errors import HeteroFLError
from heterofl.identity import run_key, run_name

LETTERS = "abcde"


def paper_fix_modes() -> list[str]:
    """Single rates plus every interpolation X_i-Y_(10-i), X < Y: 5 + 90 model modes."""
    singles = [f"{x}1" for x in LETTERS]
    pairs = [f"{x}{i}-{y}{10 - i}" for x, y in itertools.combinations(LETTERS, 2) for i in range(1, 10)]
    return singles + pairs


def paper_dynamic_modes() -> list[str]:
    """Every combination of 2 to 5 letters with equal proportions: 10 + 10 + 5 + 1 = 26 model modes."""
    return ["-".join(f"{x}1" for x in combo) for n in range(2, 6) for combo in itertools.combinations(LETTERS, n)]


def paper_ablation_controls(num_users: int, frac: float, split: str) -> list[str]:
    """The reference's make_ablation.py grid (letters a and e, combination a1-e1)."""
    head = f"1_{num_users}_{frac:g}_{split}"
    rows: list[tuple[str, str, str, int, int]] = []
    if split == "iid":
        rows += [("fix", m, n, 1, 1) for m in ("a1", "e1") for n in ("in", "ln", "gn", "bn", "none")]
        rows += [("dynamic", "a1-e1", n, 1, 1) for n in ("in", "ln", "gn")]
        rows += [("dynamic", "a1-e1", n, s, 1) for n in ("bn", "none") for s in (0, 1)]
    else:
        rows += [("fix", m, n, 1, 1) for m in ("a1", "e1") for n in ("in", "ln", "gn")]
        rows += [("fix", m, n, 1, k) for m in ("a1", "e1") for n in ("bn", "none") for k in (0, 1)]
        rows += [("dynamic", "a1-e1", n, 1, 1) for n in ("in", "ln", "gn")]
        rows += [("dynamic", "a1-e1", n, s, k) for n in ("bn", "none") for s in (0, 1) for k in (0, 1)]
    return [f"{head}_{split_mode}_{mode}_{norm}_{scale}_{mask}" for split_mode, mode, norm, scale, mask in rows]


@dataclass(frozen=True)
class Run:
    """One training job of the pipeline."""

    experiment: str
    config: ExperimentConfig
    settings: dict[str, Any]

    @property
    def dataset(self) -> str:
        return self.config.dataset

    @property
    def control(self) -> str:
        return self.config.control.format()

    @property
    def name(self) -> str:
        """The run name: the control string plus ``+tags`` (``identity.run_name``)."""
        return run_name(self.config)

    @property
    def key(self) -> str:
        return run_key(self.config)

    @property
    def partition_key(self) -> str:
        c = self.config.control
        return f"{self.config.dataset}/{c.data_split_mode}/users{c.num_users}_seed{self.config.seed}"


def _modes(value: Any, generator) -> list[str]:
    if value == "paper":
        return generator()
    return list(value or [])


def expand_experiment(name: str, spec: dict[str, Any], seeds: list[int], defaults: dict[str, Any]) -> list[Run]:
    head = f"1_{spec['num_users']}_{spec['frac']:g}"
    tail = f"{spec.get('norm', 'bn')}_{spec.get('scale', 1)}_{spec.get('mask', 1)}"
    controls: list[str] = []
    for split in spec["splits"]:
        controls += [f"{head}_{split}_fix_{m}_{tail}" for m in _modes(spec.get("fix"), paper_fix_modes)]
        controls += [f"{head}_{split}_dynamic_{m}_{tail}" for m in _modes(spec.get("dynamic"), paper_dynamic_modes)]
        if spec.get("ablation") == "paper":
            controls += paper_ablation_controls(spec["num_users"], spec["frac"], split)
    controls += list(spec.get("controls") or [])
    settings = {**defaults, **(spec.get("settings") or {})}
    if "method" in settings:
        raise HeteroFLError(
            f"experiments.{name}.settings.method", "is an axis of the experiment", f"experiments.{name}.methods: [...]"
        )
    methods = list(spec.get("methods") or ["heterofl"])
    runs = []
    for control in dict.fromkeys(controls):  # keep order, drop duplicates
        try:
            parsed = Control.parse(control)
            split = parsed.data_split_mode
            if split.startswith("non-iid-") and supports_split(spec["dataset"], split):
                check_shard_counts(
                    int(split.rsplit("-", 1)[1]),
                    parsed.num_users,
                    DATASETS[spec["dataset"]].num_classes,
                    defaults.get("non_iid_variant", "reference"),
                    spec["dataset"],
                )
        except HeteroFLError as error:
            raise HeteroFLError(f"experiments.{name}.{error.field}", error.problem, error.allowed) from None
        for method, seed in itertools.product(methods, seeds):
            run_settings = {**settings, "method": method} if method != "heterofl" else settings
            try:
                config = ExperimentConfig.from_dict(
                    {
                        "dataset": spec["dataset"],
                        "model": spec.get("model", ""),
                        "control": parsed,
                        "seed": seed,
                        **run_settings,
                    },
                    requested=True,  # milestones past rounds, last_k above the evaluations: refused while planning
                )
            except HeteroFLError as error:
                raise HeteroFLError(f"experiments.{name}.{error.field}", error.problem, error.allowed) from None
            runs.append(Run(name, config, run_settings))
    return runs


def expand_runs(config: dict[str, Any]) -> list[Run]:
    """All runs of a pipeline config; the same run (``identity.run_key``) defined twice differently is an error.

    ``experiments`` is a list (not a mapping) on purpose: Snakemake deep-merges mappings from
    ``--configfile`` into the default config, which would silently add the default grid to any other.
    """
    defaults = {
        "non_iid_variant": config.get("non_iid_variant", "reference"),
        "data_root": config.get("data_root", "data"),
    }
    runs: dict[str, Run] = {}
    experiments = config.get("experiments") or []
    names = [spec.get("name") for spec in experiments]
    if len(set(names)) != len(names):
        raise HeteroFLError("experiments", f"names {names} are not unique", "one name per experiment")
    for spec in experiments:
        name = spec["name"]
        for run in expand_experiment(name, spec, list(config["seeds"]), defaults):
            if run.key in runs and runs[run.key].settings != run.settings:
                raise HeteroFLError(
                    f"experiments.{name}",
                    f"run {run.key} is also defined by experiment {runs[run.key].experiment!r} with other settings",
                    "one definition per run",
                )
            runs[run.key] = run
    return list(runs.values())


def settings_arguments(run: Run) -> str:
    """The run's settings as ``--set key=value`` CLI arguments (values in YAML flow syntax)."""
    import yaml

    parts = []
    for key, value in sorted(run.settings.items()):
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        parts.append(f"--set '{key}={text}'")
    return " ".join(parts)

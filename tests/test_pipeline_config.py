"""Pipeline configs: every problem is refused at planning time in one line naming the key, nothing is written.

The ``snakemake -n`` cases run the real workflow in a subprocess; the rest call the same checker directly.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heterofl.pipeline_config import check

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
GOOD = {
    "results": "res",
    "seeds": [0],
    "resources": {"train": {"threads": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0}},
    "experiments": [
        {"name": "tiny", "dataset": "MNIST5k", "num_users": 5, "frac": 0.4, "splits": ["iid"], "fix": ["e1"]}
    ],
}


def _with(path: str, value) -> dict:
    config = copy.deepcopy(GOOD)
    node = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return config


CASES = [
    # (case, config, the one line must contain)
    ("unknown-experiment-key", _with("experiments.0.setings", {}), "experiments.tiny: 'setings' is not a known key"),
    ("dataset-typo", _with("experiments.0.dataset", "MNIST6k"), "experiments.tiny.dataset: 'MNIST6k'"),
    ("frac-above-one", _with("experiments.0.frac", 2), "experiments.tiny.frac: 2 is too large (allowed: a number in"),
    ("gpu-not-integer", _with("resources.train.gpu", "x"), "resources.train.gpu: 'x' is not of type integer"),
    ("seeds-repeated", _with("seeds", [0, 0]), "seeds: [0, 0] repeats an item"),
    ("seeds-missing", {k: v for k, v in GOOD.items() if k != "seeds"}, "config: 'seeds' is missing"),
    ("method-unknown", _with("experiments.0.methods", ["fedavg"]), "experiments.tiny.methods[0]: 'fedavg'"),
    ("results-empty", _with("results", ""), "results: '' is empty"),
    ("results-blank", _with("results", "  "), "results: '  ' is empty"),
    ("settings-seed", _with("experiments.0.settings", {"seed": 5}), "experiments.tiny.settings.seed: defines"),
    ("settings-num-users", _with("experiments.0.settings", {"num_users": 3}), "settings.num_users: defines"),
    ("settings-dataset", _with("experiments.0.settings", {"dataset": "MNIST"}), "settings.dataset: defines"),
    (
        "settings-variant",
        _with("experiments.0.settings", {"non_iid_variant": "distinct"}),
        "settings.non_iid_variant: defines which run a folder holds",
    ),
    ("settings-method", _with("experiments.0.settings", {"method": "fd"}), "settings.method: defines"),
]


@pytest.mark.parametrize(("config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_one_line_naming_the_key(config, expected):
    problems = check(config, SCHEMA, [])
    assert problems, "the config was accepted"
    assert any(expected in line for line in problems), problems
    assert all("\n" not in line for line in problems)


def test_good_config_and_the_shipped_configs_pass():
    assert check(GOOD, SCHEMA, []) == []
    for name in ("config", "paper", "ci", "methods", "methods_published", "fleets"):
        path = ROOT / "config" / f"{name}.yaml"
        assert check(yaml.safe_load(path.read_text()), SCHEMA, [path]) == [], name


def test_duplicate_yaml_keys_are_refused(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("seeds: [0]\nexperiments: []\nexperiments: []\n")
    problems = check(GOOD, SCHEMA, [path])
    assert problems == [f"{path}: key 'experiments' appears twice (lines 2 and 3) (allowed: each key once per mapping)"]


def _plan(work: Path, config: dict | str) -> subprocess.CompletedProcess:
    path = work / "c.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    snakefile = str(ROOT / "workflow" / "Snakefile")
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", snakefile, "--configfile", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (_with("experiments.0.frac", 2), "experiments.tiny.frac: 2 is too large"),
        (_with("experiments.0.settings", {"seed": 5}), "experiments.tiny.settings.seed"),
        (_with("experiments.0.settings", {"rounds": 0}), "experiments.tiny.rounds: 0 is not a positive integer"),
        (yaml.safe_dump(GOOD) + "experiments:\n" + yaml.safe_dump(GOOD["experiments"]), "appears twice"),
    ],
    ids=["schema", "identity-override", "run-setting", "duplicate-key"],
)
def test_snakemake_plan_refuses_in_one_line_and_writes_nothing(tmp_path, config, expected):
    config = config if isinstance(config, str) else {**config, "results": str(tmp_path / "res")}
    done = _plan(tmp_path, config)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "jsonschema" not in done.stderr
    assert not (tmp_path / "res").exists()


def test_allowed_datasets_models_and_methods_are_the_registries(monkeypatch):
    """The schema file lists none of them: a newly registered method is accepted with no schema edit, and the
    refusal of an unknown one names every registered method."""
    from heterofl.data.registry import DATASETS
    from heterofl.methods import registry
    from heterofl.models.registry import MODELS

    problems = check(_with("experiments.0.methods", ["mine"]), SCHEMA, [])
    allowed = ", ".join(registry.METHOD_NAMES)
    assert problems == [f"experiments.tiny.methods[0]: 'mine' is not allowed (allowed: {allowed})"]
    line = check(_with("experiments.0.model", "no-such-model"), SCHEMA, [])[0]
    assert line.endswith(f"(allowed: {', '.join(MODELS)})")
    line = check(_with("experiments.0.dataset", "MNIST6k"), SCHEMA, [])[0]
    assert line.endswith(f"(allowed: {', '.join(DATASETS)})")
    mine = registry.MethodSpec("mine", "Mine", "yellow", "P", "heterofl.methods.heterofl:HeteroFL")
    monkeypatch.setattr(registry, "METHOD_NAMES", (*registry.METHOD_NAMES, "mine"))
    assert check(_with("experiments.0.methods", ["heterofl", mine.name]), SCHEMA, []) == []


def test_the_config_readme_lists_every_registered_method_and_model():
    """The rows users read list the values by hand: a new method or model must be added there too."""
    from heterofl.methods.registry import METHOD_NAMES
    from heterofl.models.registry import MODELS

    rows = {line.split("|")[1].strip(): line for line in (ROOT / "config" / "README.md").read_text().splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert all(f"`{name}`" in rows["`methods`"] for name in METHOD_NAMES), rows["`methods`"]
    assert all(f"`{name}`" in rows["`model`"] for name in MODELS), rows["`model`"]
    from heterofl.data.registry import DATASETS

    assert all(f"`{name}`" in rows["`dataset`"] for name in DATASETS), rows["`dataset`"]


def test_depthfl_published_preset_is_its_setting_with_the_exact_per_round_decay():
    """config/methods_published.yaml's DepthFL entry: CIFAR-100, 100 clients, 10 per round, 4 depth levels at
    25 %, and round r's lr is DepthFL's 0.1 x 0.998^(r-1) (its client: learning_rate * decay**(round - 1))."""
    from heterofl.federation import learning_rate
    from heterofl.grid import expand_runs
    from heterofl.methods.registry import depth_level

    config = yaml.safe_load((ROOT / "config" / "methods_published.yaml").read_text())
    runs = [run for run in expand_runs(config) if run.experiment == "depthfl-cifar100"]
    assert sorted({run.config.method for run in runs}) == ["depthfl", "heterofl", "inclusivefl"]
    assert len(runs) == 3 * len(config["seeds"])
    for run in runs:
        c = run.config
        assert (c.dataset, c.model, c.resnet_blocks, c.rounds, c.local_epochs, c.batch_size_train) == (
            "CIFAR100",
            "resnet18",
            (2, 2, 2, 2),
            1000,
            5,
            50,
        )
        assert (c.control.num_users, c.control.frac, c.control.data_split_mode) == (100, 0.1, "iid")
        assert (c.momentum, c.weight_decay) == (0.0, 0.001)
        mode = c.mode
        assert mode.probabilities == (0.25,) * 4
        assert [depth_level(r, mode.global_rate, 4) for r in mode.rates] == [4, 3, 2, 1]
        for round_ in range(1, c.rounds + 1):
            assert learning_rate(c, round_) == pytest.approx(0.1 * 0.998 ** (round_ - 1), rel=1e-12), round_


def test_depthfl_feddyn_preset_is_the_same_setting_with_the_authors_alpha():
    """The published 76.06 row: DepthFL's preset above (through a YAML merge key) plus FedDyn with its code's
    alpha 0.1; every other result-defining setting equal, so the two presets differ only by FedDyn."""
    from heterofl.grid import expand_runs

    config = yaml.safe_load((ROOT / "config" / "methods_published.yaml").read_text())
    runs = expand_runs(config)
    plain = {
        r.config.seed: r.config for r in runs if r.experiment == "depthfl-cifar100" and r.config.method == "depthfl"
    }
    feddyn = {run.config.seed: run.config for run in runs if run.experiment == "depthfl-feddyn-cifar100"}
    assert sorted(feddyn) == sorted(config["seeds"])
    for seed, c in feddyn.items():
        assert (c.method, c.feddyn_alpha) == ("depthfl", 0.1)
        assert c.result_fields() == {**plain[seed].result_fields(), "feddyn_alpha": 0.1}

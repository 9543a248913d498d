"""One run identity: the control string plus a +tag per non-default identity setting, used everywhere."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from heterofl.config import HASHED, HASHED_WHEN_SET, ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.grid import expand_runs
from heterofl.identity import control_of, identity_settings, is_run_name, run_key, run_name

ROOT = Path(__file__).resolve().parents[1]


def test_default_heterofl_run_is_named_by_its_control_string_alone():
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": "1_20_0.25_iid_fix_a1-e9_bn_1_1"})
    assert run_name(config) == "1_20_0.25_iid_fix_a1-e9_bn_1_1"
    assert run_key(config) == "MNIST5k/conv/1_20_0.25_iid_fix_a1-e9_bn_1_1/seed0"


def test_non_default_identity_settings_become_tags_in_a_fixed_order():
    config = ExperimentConfig.from_dict(
        {"dataset": "CIFAR10", "control": "1_10_0.5_iid_fix_a1-b1_bn_1_1", "method": "fjord", "fjord_scaler": True}
    )
    assert run_name(config) == "1_10_0.5_iid_fix_a1-b1_bn_1_1+fjord+scaler"
    blocks = config.replace(resnet_blocks=(2, 2, 2, 2))
    assert run_name(blocks) == "1_10_0.5_iid_fix_a1-b1_bn_1_1+fjord+scaler+blocks2222"
    assert control_of(run_name(blocks)) == "1_10_0.5_iid_fix_a1-b1_bn_1_1"
    assert is_run_name(run_name(blocks)) and not is_run_name("results/x")


def test_committed_default_grid_keeps_its_folders():
    """Adding methods must not rename a single committed run folder of the default grid."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    runs = expand_runs(config)
    assert len(runs) == 32
    for run in runs:
        assert (ROOT / config["cache"] / "runs" / run.key / "config.yaml").is_file(), run.key


def test_method_axis_multiplies_the_grid_and_names_each_run():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["experiments"][0]["methods"] = ["heterofl", "fedrolex", "fd"]
    runs = expand_runs(config)
    assert len(runs) == 3 * 32
    names = {run.name for run in runs}
    assert "1_20_0.25_iid_fix_a1-e9_bn_1_1+fedrolex" in names
    assert "1_20_0.25_iid_fix_a1-e9_bn_1_1+fd" in names
    assert "1_20_0.25_iid_fix_a1-e9_bn_1_1" in names
    assert {run.config.method for run in runs if run.name.endswith("+fd")} == {"fd"}


def test_method_in_settings_is_refused_with_the_axis_named():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["experiments"][0]["settings"]["method"] = "fd"
    with pytest.raises(HeteroFLError, match=r"settings\.method.*methods"):
        expand_runs(config)


FIRST_RELEASE_HASHED = (
    "dataset", "model", "control", "seed", "rounds", "local_epochs", "lr", "momentum", "weight_decay", "gamma",
    "milestones", "batch_size_train", "batch_size_test", "clip_norm", "eval_every", "eval_rates", "last_k",
    "stats_batch_size", "resnet_blocks", "non_iid_variant", "engine",
)  # fmt: skip
"""The fields the config hash covered in the first release: a fixed fact, not read from the code."""
COMMITTED = ROOT / "results" / "committed" / "runs"


def _first_release_hash(config: ExperimentConfig) -> str:
    values = config.to_dict()
    legacy = {name: values[name] for name in FIRST_RELEASE_HASHED}
    return hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]


def test_new_fields_at_their_default_keep_the_config_hash():
    """A HeteroFL run's hash is the first release's formula over the first release's fields, whatever fields
    were added since: a new field not declared ``hashed=HASHED_WHEN_SET`` fails here."""
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": "1_20_0.25_iid_fix_a1-e9_bn_1_1", "seed": 3})
    assert config.config_hash() == _first_release_hash(config)
    for change in ({"method": "fd"}, {"precision": "bf16"}, {"server_optimizer": "sgd"}):
        assert config.replace(**change).config_hash() != _first_release_hash(config), change


def test_every_committed_run_keeps_its_hash_and_name():
    """The committed runs' config.yaml, read with today's fields, hash and name as the first release did."""
    folders = sorted(COMMITTED.glob("*/*/*/seed*"))
    assert len(folders) == 32
    for folder in folders:
        config = ExperimentConfig.from_dict(yaml.safe_load((folder / "config.yaml").read_text()))
        assert config.config_hash() == _first_release_hash(config), folder
        assert run_key(config) == folder.relative_to(COMMITTED).as_posix()


def test_every_field_declares_how_it_enters_the_identity():
    """Fields beyond the first release are hashed only when set; a tag, where declared, spells a path-safe name."""
    for item in dataclasses.fields(ExperimentConfig):
        hashed = item.metadata.get("hashed", HASHED)
        if item.name in FIRST_RELEASE_HASHED:
            assert hashed == HASHED, item.name
        elif item.name not in ("data_root", "checkpoint_every"):
            assert hashed == HASHED_WHEN_SET, f"{item.name}: a later field must be hashed only when set"
    tags = identity_settings()
    known = ["method", "fjord_scaler", "resnet_blocks", "precision", *SERVER_SETTINGS]
    assert [name for name in tags if name in known] == known  # a new tagged setting takes its place by tag_order
    config = ExperimentConfig.from_dict(
        {"dataset": "CIFAR10", "control": "1_20_0.25_iid_fix_a1_bn_1_1", "method": "fd", "resnet_blocks": [2, 2, 2, 2]}
    )
    assert run_name(config) == "1_20_0.25_iid_fix_a1_bn_1_1+fd+blocks2222"
    server = config.replace(server_optimizer="sgd", server_momentum=0.9, method="heterofl")
    assert run_name(server) == "1_20_0.25_iid_fix_a1_bn_1_1+blocks2222+server-sgd+smom0.9"
    assert is_run_name(run_name(server))


SERVER_SETTINGS = ["server_optimizer", "server_lr", "server_momentum"]
AXES = ("dataset", "model", "control", "seed")  # the experiment grid's axes, documented as such


def test_tagged_settings_have_distinct_tag_orders():
    """Two tags of one order would be spelled in field order, silently: every tag declares its own place."""
    orders = [f.metadata["tag_order"] for f in dataclasses.fields(ExperimentConfig) if f.metadata.get("tag")]
    assert len(orders) == len(set(orders)), sorted(orders)


def test_every_setting_has_a_row_in_the_settings_table_of_the_config_readme():
    """A setting users cannot find is one they cannot set: each field is a row of config/README.md's table."""
    readme = (Path(__file__).resolve().parents[1] / "config" / "README.md").read_text().splitlines()
    rows = [line.split("|")[1] for line in readme if line.startswith("| `")]
    for item in dataclasses.fields(ExperimentConfig):
        if item.name not in AXES:
            assert any(f"`{item.name}`" in row for row in rows), f"{item.name} has no row in config/README.md"

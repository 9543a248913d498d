"""One run identity: the control string plus a +tag per non-default identity setting, used everywhere."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.grid import expand_runs
from heterofl.identity import control_of, is_run_name, run_key, run_name

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


def test_new_fields_at_their_default_keep_the_config_hash():
    """The hash of a HeteroFL run is the hash of the fields that existed before methods (same formula)."""
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": "1_20_0.25_iid_fix_a1-e9_bn_1_1", "seed": 3})
    legacy = config.to_dict()
    for name in ("data_root", "checkpoint_every", "method", "fjord_scaler", "precision"):
        legacy.pop(name)
    expected = hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    assert config.config_hash() == expected
    assert config.replace(method="fd").config_hash() != expected
    assert config.replace(precision="bf16").config_hash() != expected

"""The ``precision`` setting: bf16 autocast in local training only, tf32 only on CUDA, fp32 by default.

A run's result must say which arithmetic made it: a non-default precision is part of the config hash and
of the run name, and the default leaves both as they were before the setting existed.
"""

from __future__ import annotations

import pytest
import torch
from synthetic import image_dataset

from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.identity import run_name

CONTROL = "1_10_0.6_iid_fix_a1-e1_bn_1_1"
DATASET = image_dataset("MNIST5k", (1, 28, 28), 300, 60)


def _config(**extra) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {"dataset": "MNIST5k", "control": CONTROL, "rounds": 1, "local_epochs": 1, "batch_size_train": 10, **extra}
    )


def _federation(**extra) -> Federation:
    config = _config(**extra)
    partition = make_partition(DATASET, "iid", config.control.num_users, seed=0)
    federation = Federation(config, DATASET, partition, torch.device("cpu"))
    federation.build_models()
    return federation


def test_unknown_precision_names_the_field_and_the_choices():
    with pytest.raises(HeteroFLError) as error:
        _config(precision="fp16")
    assert "precision" in str(error.value) and "fp32, tf32, bf16" in str(error.value)


def test_default_precision_keeps_hash_and_name_bf16_changes_both():
    plain, fp32, bf16 = _config(), _config(precision="fp32"), _config(precision="bf16")
    assert "precision" not in plain.result_fields()
    assert plain.config_hash() == fp32.config_hash() != bf16.config_hash()
    assert run_name(fp32) == CONTROL and run_name(bf16) == CONTROL + "+bf16"


def test_tf32_is_refused_on_the_cpu():
    with pytest.raises(HeteroFLError) as error:
        _federation(precision="tf32")
    assert "precision" in str(error.value) and "CUDA" in str(error.value)


def _conv_output_dtypes(federation: Federation) -> tuple[set, set]:
    """dtypes of every convolution's output during local training, and during static BN + evaluation."""
    seen: dict[str, set] = {"train": set(), "eval": set()}
    hooks = []
    for phase, models in (
        ("train", [federation.train_model(r) for r in (1.0, 0.0625)]),
        ("eval", [federation.eval_model(1.0)]),
    ):
        for model in models:
            for module in model.modules():
                if isinstance(module, torch.nn.Conv2d):
                    hooks.append(module.register_forward_hook(lambda m, i, o, p=phase: seen[p].add(o.dtype)))
    federation.train(federation.initial_state())
    for hook in hooks:
        hook.remove()
    return seen["train"], seen["eval"]


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_bf16_trains_in_bf16_and_evaluates_in_fp32(engine):
    train, evaluate = _conv_output_dtypes(_federation(precision="bf16", engine=engine))
    assert train == {torch.bfloat16}
    assert evaluate == {torch.float32}
    train, evaluate = _conv_output_dtypes(_federation(engine=engine))
    assert train == {torch.float32} and evaluate == {torch.float32}


def test_bf16_round_is_close_to_fp32_but_not_equal():
    """bf16 keeps about 3 significant digits: a round moves the model by the same update up to that."""
    fp32 = _federation().train().params
    bf16 = _federation(precision="bf16").train().params
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)
    for name in fp32:
        torch.testing.assert_close(bf16[name], fp32[name], atol=2e-2, rtol=2e-2, msg=name)


def test_batched_engine_trains_bf16_one_client_at_a_time():
    """vmapped BatchNorm under autocast fails in backward (torch 2.14), so bf16 groups train sequentially."""
    sequential = _federation(precision="bf16", engine="sequential").train().params
    batched = _federation(precision="bf16", engine="batched").train().params
    for name in sequential:
        assert torch.equal(batched[name], sequential[name]), name

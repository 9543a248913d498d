"""The grid cost estimator counts a run's arithmetic as the accounting does: checked by hand on two runs."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from heterofl.config import ExperimentConfig
from heterofl.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from paper_grid_cost import MacCounter, run_flops  # noqa: E402


def _macs_per_image(rate: float) -> int:
    """Multiply-accumulates of the MNIST conv model at ``rate``, counted from its layers' shapes by hand."""
    model = build_model("conv", rate)
    total, size, channels = 0, 28, 1
    for block in model.blocks:
        conv = block.conv
        total += size * size * conv.out_channels * channels * 9  # 3x3, padding 1: one output per pixel
        channels = conv.out_channels
        if not isinstance(block.pool, torch.nn.Identity):
            size //= 2
    return total + channels * model.classifier.out_features


def test_single_rate_run_is_training_plus_static_bn_and_test():
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST",
            "control": "1_100_0.1_iid_fix_a1_bn_1_1",
            "rounds": 10,
            "local_epochs": 5,
            "eval_every": 2,
            "eval_rates": "global",
        }
    )
    m = _macs_per_image(1.0)
    flops = run_flops(config, MacCounter())
    # 10 clients x 600 images x 5 epochs per round, forward + backward = 3 forwards, 2 FLOPs per MAC
    assert flops["train"] == 2 * 3 * m * 10 * 600 * 5 * 10
    # static BN over 60,000 training images and the test over 10,000, at 5 of the 10 rounds
    assert flops["server"] == 2 * m * (60_000 + 10_000) * 5
    # eval_rates all: the same passes at every rate a..e
    every_rate = sum(_macs_per_image(r) for r in (1.0, 0.5, 0.25, 0.125, 0.0625))
    assert run_flops(config.replace(eval_rates="all"), MacCounter())["server"] == 2 * every_rate * 70_000 * 5


def test_mix_is_expected_over_proportions():
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST",
            "control": "1_100_0.1_iid_dynamic_a1-e3_bn_1_1",
            "rounds": 1,
            "local_epochs": 1,
            "eval_rates": "global",
        }
    )
    per_image = (_macs_per_image(1.0) + 3 * _macs_per_image(0.0625)) / 4
    flops = run_flops(config, MacCounter())
    assert abs(flops["train"] - 2 * 3 * per_image * 10 * 600) < 1e-6 * flops["train"]
    assert flops["server"] == 2 * _macs_per_image(1.0) * 70_000  # evaluated at the global rate only

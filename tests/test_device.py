"""Training on every device this machine has: the engines agree, a resumed run continues the same run,
deterministic mode repeats bitwise, and (with a GPU) a CUDA round matches the same round on the CPU.

Every test runs on the CPU, and again on CUDA when a GPU is present (``benchmarks/device_check.sh`` runs
this file on a GPU machine). Data are small synthetic tensors of the real image shapes, so the file needs
no dataset download. On CUDA, cuDNN and atomic adds may sum in another order between two calls, so the
comparisons there allow float32 rounding; deterministic mode removes that and is compared bitwise.
"""

from __future__ import annotations

import os

import pytest
import torch
from synthetic import image_dataset

from heterofl.checkpoint import load_checkpoint, save_checkpoint
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.federation import Federation, RunState
from heterofl.runner import use_deterministic_kernels

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts, for deterministic mode

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
CUDA_TOLERANCE = {"atol": 2e-4, "rtol": 2e-3}


CASES = {
    "conv": (
        image_dataset("MNIST5k", (1, 28, 28), 300, 60),
        "1_10_0.6_non-iid-2_fix_a1-b1-e1_bn_1_1",
        {"local_epochs": 1, "batch_size_train": 8},
    ),
    "resnet": (
        image_dataset("CIFAR10", (3, 32, 32), 90, 20, augment=True),
        "1_5_1_non-iid-2_fix_a1-b1-e1_bn_1_1",
        {"local_epochs": 1, "batch_size_train": 4, "resnet_blocks": [1, 1, 1, 1]},
    ),
}


def _federation(case: str, device: str, engine: str, rounds: int) -> Federation:
    dataset, control, extra = CASES[case]
    config = ExperimentConfig.from_dict(
        {"dataset": dataset.name, "control": control, "rounds": rounds, "engine": engine, **extra}
    )
    partition = make_partition(dataset, control.split("_")[3], config.control.num_users, seed=0)
    federation = Federation(config, dataset, partition, torch.device(device))
    federation.build_models()  # as the runner does: before the RNG is seeded or restored
    return federation


def _train(case: str, device: str, engine: str, rounds: int) -> RunState:
    federation = _federation(case, device, engine, rounds)
    return federation.train(federation.initial_state())


def _assert_params(got: dict, want: dict, device: str, exact: bool = False) -> None:
    assert got.keys() == want.keys()
    for name in want:
        if exact or device == "cpu":
            assert torch.equal(got[name].cpu(), want[name].cpu()), name
        else:
            torch.testing.assert_close(got[name].cpu(), want[name].cpu(), **CUDA_TOLERANCE, msg=name)


def _accuracies(state: RunState) -> dict[str, float]:
    return {k: v for k, v in state.history[-1].items() if k.endswith("Accuracy")}


@pytest.fixture
def deterministic():
    was = torch.are_deterministic_algorithms_enabled()
    use_deterministic_kernels(True)
    yield
    use_deterministic_kernels(was)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_engine_matches_sequential_on_device(case: str, device: str) -> None:
    sequential = _train(case, device, "sequential", rounds=1)
    batched = _train(case, device, "batched", rounds=1)
    assert all(v.device.type == device for v in batched.params.values())
    tolerance = {"atol": 1e-5, "rtol": 1e-4} if device == "cpu" else CUDA_TOLERANCE
    for name in sequential.params:
        torch.testing.assert_close(batched.params[name], sequential.params[name], **tolerance, msg=name)
    seq_row, bat_row = sequential.history[-1], batched.history[-1]
    assert bat_row["train_loss"] == pytest.approx(seq_row["train_loss"], rel=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_resumed_run_continues_the_same_run_on_device(device: str, tmp_path) -> None:
    straight = _train("conv", device, "auto", rounds=3)

    first = _federation("conv", device, "auto", rounds=3)
    state = first.run_round(first.initial_state())
    save_checkpoint(tmp_path / "checkpoint.pt", first.config, state)
    second = _federation("conv", device, "auto", rounds=3)
    resumed = second.train(load_checkpoint(tmp_path / "checkpoint.pt", second.config, second.device))

    assert resumed.round == straight.round == 3
    _assert_params(resumed.params, straight.params, device)
    for name, value in _accuracies(straight).items():
        assert _accuracies(resumed)[name] == pytest.approx(value, abs=0.0 if device == "cpu" else 0.5), name


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_deterministic_mode_repeats_bitwise_on_device(case: str, device: str, deterministic) -> None:
    one = _train(case, device, "auto", rounds=2)
    two = _train(case, device, "auto", rounds=2)
    _assert_params(two.params, one.params, device, exact=True)
    assert [r["train_loss"] for r in one.history] == [r["train_loss"] for r in two.history]
    assert _accuracies(one) == _accuracies(two)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (benchmarks/device_check.sh on a GPU)")
@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_round_matches_the_cpu_round(case: str) -> None:
    """Full fp32 on both (TF32 off on the GPU): one round agrees to float32 rounding."""
    cpu = _train(case, "cpu", "sequential", rounds=1)
    gpu = _train(case, "cuda", "auto", rounds=1)
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    for name in cpu.params:
        torch.testing.assert_close(gpu.params[name].cpu(), cpu.params[name], **CUDA_TOLERANCE, msg=name)
    for name, value in _accuracies(cpu).items():
        assert _accuracies(gpu)[name] == pytest.approx(value, abs=2.0), name

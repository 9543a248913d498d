"""The batched engine gives the same aggregated model as the sequential reference engine.

Each case builds ``heterofl.data.Dataset`` objects from small synthetic tensors, runs one round with each
engine from the same initial state and compares every aggregated tensor. The transformer runs with
dropout 0: dropout draws from the global RNG, so its masks differ between engines by design.
"""

from __future__ import annotations

import pytest
import torch
from synthetic import image_dataset
from torch import nn

from heterofl.batched import make_engine
from heterofl.config import ExperimentConfig
from heterofl.data import Dataset, make_partition
from heterofl.federation import Federation
from heterofl.methods import METHOD_NAMES, METHODS
from heterofl.rates import RATE_OF_LETTER


def _text(vocab: int = 50, rows: int = 8, length: int = 150) -> Dataset:
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, vocab, (rows, length), generator=g)
    test = torch.randint(0, vocab, (2, 70), generator=g)
    return Dataset("WikiText2", train, train, test, test, vocab, False)


def _round(dataset: Dataset, control: str, engine: str, extra: dict, rounds: int = 1) -> dict[str, torch.Tensor]:
    scheme = control.split("_")[3]
    config = ExperimentConfig.from_dict(
        {
            "dataset": dataset.name,
            "control": control,
            "rounds": rounds,
            "engine": "sequential",
            "eval_rates": "global",
            **extra,
        }
    )
    users = config.control.num_users
    federation = Federation(config, dataset, make_partition(dataset, scheme, users, seed=0), torch.device("cpu"))
    federation.engine = make_engine(engine, federation.train_model, federation.task)
    for rate in RATE_OF_LETTER.values() if federation.depth_of is None else federation.depth_of:
        for module in federation.train_model(rate).modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    after = federation.train()
    return after.params, after.history[-1]


CASES = {
    "conv-mixed-iid": (
        image_dataset("MNIST5k", (1, 28, 28), 240, 40),
        "1_12_0.5_iid_fix_a1-b1-e1_bn_1_1",
        {"local_epochs": 2, "batch_size_train": 7},
    ),
    "conv-mixed-noniid": (
        image_dataset("MNIST5k", (1, 28, 28), 300, 60),
        "1_10_0.6_non-iid-2_fix_a1-b1-e1_bn_1_1",
        {"local_epochs": 1, "batch_size_train": 8},
    ),
    "resnet-augmented": (
        image_dataset("CIFAR10", (3, 32, 32), 90, 20, augment=True),
        "1_5_1_non-iid-2_fix_a1-b1-e1_bn_1_1",
        {"local_epochs": 1, "batch_size_train": 4, "resnet_blocks": [1, 1, 1, 1]},
    ),
    "transformer": (_text(), "1_4_1_iid_fix_a1-b1-e1_bn_1_1", {"local_epochs": 1}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_engine_matches_sequential(case: str) -> None:
    _assert_same_round(*CASES[case], "batched")


def test_auto_engine_matches_sequential() -> None:
    """``auto`` mixes batched groups (small rates, many clients) with one-by-one groups in one round."""
    dataset = image_dataset("MNIST5k", (1, 28, 28), 400, 40)
    _assert_same_round(dataset, "1_20_0.5_iid_fix_a1-e4_bn_1_1", {"local_epochs": 1, "batch_size_train": 8}, "auto")


@pytest.mark.parametrize("engine", ["batched", "auto"])
def test_mlp_engines_match_sequential_over_two_rounds(engine: str) -> None:
    """The MLP's BatchNorm1d under vmap, two rounds; 4 clients per rate, so ``auto`` batches both rate groups
    (and first counts a step's MACs, which a batch-of-one count cannot do for BatchNorm1d)."""
    dataset = image_dataset("MNIST5k", (1, 28, 28), 160, 30)
    extra = {"model": "mlp", "local_epochs": 1, "batch_size_train": 8}
    _assert_same_round(dataset, "1_8_1_iid_fix_a1-e1_bn_1_1", extra, engine, rounds=2)


@pytest.fixture
def float64():
    """Random selections make the transformer's rounds chaotic in float32 (1e-7 noise grows to 1e-4 in two
    rounds); in float64 the engines must agree to rounding, which is the stronger check."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize(
    ("case", "method"),
    [
        (case, method)
        for case in ("conv", "transformer")
        for method in METHOD_NAMES
        if method != "heterofl" and not (case == "transformer" and METHODS[method].depth_exits)
    ]
    + [("conv", "depthfl+feddyn")],
)
def test_batched_engine_matches_sequential_for_every_method(case: str, method: str, float64) -> None:
    """Two rounds, so FedRolex's window has moved and FedEcover's pools carry over between rounds; the depth
    methods (conv only: the transformer has no stages) with three depth levels, DepthFL's distillation on, and
    DepthFL with FedDyn (whose client states from round 1 shape round 2)."""
    method, _, variant = method.partition("+")
    extra = {"feddyn_alpha": 0.1} if variant == "feddyn" else {}
    if case == "conv":
        dataset = image_dataset("MNIST5k", (1, 8, 8), 96, 16)
        mode = "a1-b1-c1" if METHODS[method].depth_exits else "a1-b1-e1"
        control, extra = f"1_5_1_non-iid-2_fix_{mode}_bn_1_1", {**extra, "local_epochs": 1, "batch_size_train": 8}
    else:
        dataset, control, extra = _text(rows=4, length=64), "1_4_1_iid_fix_a1-b1-e1_bn_1_1", {"local_epochs": 1}
    _assert_same_round(dataset, control, {**extra, "method": method}, "batched", rounds=2, tolerance=1e-9)


def _assert_same_round(
    dataset: Dataset, control: str, extra: dict, engine: str, rounds: int = 1, tolerance: float | None = None
) -> None:
    sequential, seq_row = _round(dataset, control, "sequential", extra, rounds)
    batched, bat_row = _round(dataset, control, engine, extra, rounds)
    assert sequential.keys() == batched.keys()
    atol, rtol = (tolerance, tolerance) if tolerance else (1e-5, 1e-4)
    for name in sequential:
        torch.testing.assert_close(batched[name], sequential[name], atol=atol, rtol=rtol, msg=name)
    assert bat_row["train_loss"] == pytest.approx(seq_row["train_loss"], rel=1e-4, abs=1e-5)
    assert bat_row["train_accuracy"] == pytest.approx(seq_row["train_accuracy"], abs=1e-6)
    assert bat_row["train_accuracy_masked"] == pytest.approx(seq_row["train_accuracy_masked"], abs=1e-6)


def test_masked_train_accuracy_is_the_accuracy_of_the_logits_the_loss_sees() -> None:
    """The loss masks absent classes (their logits set to 0); ``train_accuracy_masked`` takes the argmax of those
    same logits, ``train_accuracy`` of the raw ones (issue 24: loss 0.27 beside accuracy 47 %)."""
    from heterofl.local_training import TrainMetrics
    from heterofl.models import masked_cross_entropy

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator) - 1.0  # mostly negative: a masked 0 can win the raw argmax
    logits[:, 7] += 3.0  # class 7 is absent from the client: it wins many raw argmaxes
    targets = torch.randint(0, 3, (64,), generator=generator)
    held = torch.zeros(10, dtype=torch.bool)
    held[:3] = True
    metrics = TrainMetrics()
    metrics.add(masked_cross_entropy(logits, targets, held), logits, targets, held)
    metrics.samples = 64
    summary = metrics.summary()
    seen = torch.where(held, logits, torch.zeros_like(logits))  # what masked_cross_entropy's softmax sees
    assert summary["train_accuracy_masked"] == pytest.approx(100.0 * (seen.argmax(1) == targets).float().mean().item())
    assert summary["train_accuracy"] == pytest.approx(100.0 * (logits.argmax(1) == targets).float().mean().item())
    assert summary["train_accuracy_masked"] > summary["train_accuracy"]
    assert summary["train_loss"] == pytest.approx(masked_cross_entropy(logits, targets, held).item())

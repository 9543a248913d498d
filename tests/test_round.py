"""Static BN, the learning-rate schedule, a full round against plain FedAvg, and per-rate evaluation."""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from synthetic import image_dataset

from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.federation import Federation, learning_rate
from heterofl.local_training import client_seed
from heterofl.models import build_model
from heterofl.static_bn import fit_static_bn


def test_static_bn_statistics_are_cumulative_batch_moments():
    torch.manual_seed(0)
    model = build_model("conv", 0.25)
    x = torch.randn(20, 1, 28, 28)
    fit_static_bn(model, x, batch_size=7)  # batches of 7, 7, 6
    conv = model.blocks[0].conv
    means, variances = [], []
    for batch in x.split(7):
        act = F.conv2d(batch, conv.weight, conv.bias, padding=1)  # Scaler is the identity at evaluation
        means.append(act.mean((0, 2, 3)))
        variances.append(act.var((0, 2, 3), unbiased=True))
    bn = model.blocks[0].norm
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, torch.stack(variances).mean(0), rtol=1e-5, atol=1e-6)
    assert not model.training


def test_static_bn_moments_are_float_accurate_in_channels_last():
    """The CPU pass runs NHWC; its moments must match float64 even where a naive float32 sum drifts
    (activations with a large mean over a 100,000-row reduction)."""
    torch.manual_seed(0)
    model = build_model("conv", 0.25)
    x = torch.randn(400, 1, 28, 28) * 0.1 + 40.0
    fit_static_bn(model, x, batch_size=200)
    conv = model.blocks[0].conv
    means, variances = [], []
    for batch in x.double().split(200):
        act = F.conv2d(batch, conv.weight.double(), conv.bias.double(), padding=1)
        mean = act.mean((0, 2, 3))
        means.append(mean)
        variances.append(((act - mean[:, None, None]) ** 2).sum((0, 2, 3)) / (act.numel() / act.shape[1] - 1))
    bn = model.blocks[0].norm
    torch.testing.assert_close(bn.running_mean.double(), torch.stack(means).mean(0), rtol=2e-6, atol=0)
    torch.testing.assert_close(bn.running_var.double(), torch.stack(variances).mean(0), rtol=2e-6, atol=0)


def test_static_bn_batches_follow_the_given_order():
    """Label-sorted data cut into batches in stored order hides the variance between classes; the pass
    cuts ``inputs[order]`` instead, as the reference's shuffled loader does."""
    model = build_model("conv", 0.0625)
    x = torch.cat([torch.zeros(50, 1, 28, 28), torch.ones(50, 1, 28, 28)])  # two "classes", sorted
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    fit_static_bn(model, x, 50)
    sorted_var = model.blocks[0].norm.running_var.clone()
    fit_static_bn(model, x, 50, order)
    shuffled_var = model.blocks[0].norm.running_var.clone()
    w, b = model.blocks[0].conv.weight.detach().double(), model.blocks[0].conv.bias.detach().double()
    expected = []
    for rows in order.split(50):
        act = F.conv2d(x[rows].double(), w, b, padding=1)
        expected.append(act.var((0, 2, 3), unbiased=True))
    torch.testing.assert_close(shuffled_var.double(), torch.stack(expected).mean(0), rtol=1e-5, atol=1e-9)
    assert (shuffled_var > sorted_var * 1.5).any(), "sorted batches should miss the between-class variance"


def test_static_bn_is_recomputed_not_accumulated():
    model = build_model("conv", 0.0625)
    fit_static_bn(model, torch.randn(10, 1, 28, 28) + 5.0, 10)
    fit_static_bn(model, torch.zeros(10, 1, 28, 28), 10)
    conv = model.blocks[0].conv
    torch.testing.assert_close(model.blocks[0].norm.running_mean, conv.bias.detach())


def test_learning_rate_matches_torch_multistep():
    config = ExperimentConfig.from_dict({"dataset": "CIFAR10", "control": "1_100_0.1_iid_fix_a1_bn_1_1"})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma)
    for round_ in range(1, 400):
        assert abs(learning_rate(config, round_) - optimizer.param_groups[0]["lr"]) < 1e-12, round_
        optimizer.step()
        scheduler.step()


def test_round_at_global_rate_equals_plain_fedavg():
    """All clients at rate a, all labels, mask off: HeteroFL is the unweighted mean of independent SGD runs."""
    dataset = image_dataset(n_train=600, cyclic_labels=True)
    partition = make_partition(dataset, "iid", 10, seed=0)
    assert all(len(labels) == 10 for labels in partition.label_sets), "precondition: every client has all labels"
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": "1_10_0.3_iid_fix_a1_bn_1_0",
            "rounds": 1,
            "local_epochs": 2,
            "batch_size_train": 8,
            "engine": "sequential",
            "eval_rates": "global",
        }
    )
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    state = federation.initial_state()
    start = copy.deepcopy(state)
    after = federation.run_round(state)

    sampler = torch.Generator()
    sampler.set_state(start.sampler_state)
    users = torch.randperm(10, generator=sampler)[:3].tolist()
    trained = []
    for user in users:
        model = build_model("conv", 1.0)
        model.load_state_dict(start.params, strict=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        generator = torch.Generator().manual_seed(client_seed(0, 1, user))
        indices = torch.as_tensor(partition.train_indices[user])
        model.train()
        for _ in range(2):
            order = indices[torch.randperm(len(indices), generator=generator)]
            for batch in order.split(8):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(dataset.train_x[batch]), dataset.train_y[batch])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        trained.append(dict(model.named_parameters()))
    for name, value in after.params.items():
        expected = torch.stack([t[name].detach() for t in trained]).mean(0)
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert after.round == 1 and after.history[0]["clients"] == 3


def test_every_submodel_rate_is_evaluated():
    dataset = image_dataset(cyclic_labels=True)
    partition = make_partition(dataset, "iid", 10, seed=0)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": "1_10_0.2_iid_fix_b1-e1_bn_1_1",
            "rounds": 1,
            "local_epochs": 1,
            "engine": "sequential",
        }
    )
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    state = federation.train()
    row = state.history[-1]
    for letter in "bcde":
        assert 0.0 <= row[f"{letter}_Global-Accuracy"] <= 100.0
        assert np.isfinite(row[f"{letter}_Local-Loss"])
    assert "a_Global-Accuracy" not in row
    # The global-rate metrics equal a hand evaluation of the global model with fresh static BN.
    # The statistics pass visits the training images in the run seed's shuffled order (2 batches of 100).
    assert len(dataset.train_x) > config.stats_batch_size
    order = torch.randperm(len(dataset.train_x), generator=torch.Generator().manual_seed(config.seed))
    model = build_model("conv", 0.5)
    model.load_state_dict(state.params)
    fit_static_bn(model, dataset.train_x[order], config.stats_batch_size)
    with torch.no_grad():
        accuracy = 100.0 * (model(dataset.test_x).argmax(1) == dataset.test_y).float().mean().item()
    assert abs(row["b_Global-Accuracy"] - accuracy) < 1e-9


def test_one_round_with_100_classes_non_iid_2_and_cifar100_augmentation(monkeypatch):
    """A CIFAR100-shaped run: the 100-way head, label-split aggregation over 100 classes, CIFAR-100's padding."""
    import heterofl.tasks
    from heterofl.data import Dataset

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(100).repeat_interleave(4)  # 4 training and 2 test images per class
    dataset = Dataset(
        "CIFAR100",
        torch.randn(400, 3, 32, 32, generator=g),
        labels,
        torch.randn(200, 3, 32, 32, generator=g),
        torch.arange(100).repeat_interleave(2),
        100,
        True,
    )
    seen = []
    real_augment = heterofl.tasks.augment_batch

    def spy(x, generator, mean, std):
        seen.append((mean, std))
        return real_augment(x, generator, mean, std)

    monkeypatch.setattr(heterofl.tasks, "augment_batch", spy)
    partition = make_partition(dataset, "non-iid-2", 50, seed=0)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "CIFAR100",
            "model": "conv",
            "control": "1_50_0.1_non-iid-2_fix_a1-b1_bn_1_1",
            "rounds": 1,
            "local_epochs": 1,
            "batch_size_train": 4,
            "engine": "sequential",
        }
    )
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    start = federation.initial_state()
    after = federation.run_round(copy.deepcopy(start))
    assert seen and set(seen) == {((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
    assert after.params["classifier.weight"].shape[0] == 100
    # masked loss + label-split aggregation: exactly the rows of the 5 sampled clients' 2 labels each move
    changed = set(torch.nonzero(after.params["classifier.bias"] != start.params["classifier.bias"]).flatten().tolist())
    owners = [u for u, held in enumerate(partition.label_sets) if changed & set(held.tolist())]
    assert len(owners) == 5 and changed == {int(k) for u in owners for k in partition.label_sets[u]}
    row = after.history[-1]
    assert row["clients"] == 5
    for letter in "ab":
        assert 0.0 <= row[f"{letter}_Global-Accuracy"] <= 100.0 and 0.0 <= row[f"{letter}_Local-Accuracy"] <= 100.0

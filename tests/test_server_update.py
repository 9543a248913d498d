"""The server step seam: the plain mean by default (bitwise the aggregator's mean), server SGD with momentum
(FedAvgM) against a hand computation, its settings refused where they would do nothing, and a resume from a
checkpoint that continues the momentum bitwise."""

from __future__ import annotations

import pytest
import torch
from synthetic import image_dataset

from heterofl.checkpoint import load_checkpoint, save_checkpoint
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.server_update import make_server_update

BASE = {
    "dataset": "MNIST5k",
    "control": "1_6_0.5_iid_fix_a1-e1_bn_1_1",
    "rounds": 3,
    "local_epochs": 1,
    "batch_size_train": 10,
    "engine": "sequential",
    "eval_rates": "global",
    "eval_every": 3,
}


def test_server_sgd_with_momentum_matches_a_hand_computation():
    config = ExperimentConfig.from_dict({**BASE, "server_optimizer": "sgd", "server_lr": 0.5, "server_momentum": 0.9})
    update = make_server_update(config)
    old = {"w": torch.tensor([1.0, 2.0])}
    state: dict = {}
    new, state = update(old, {"w": torch.tensor([0.0, 2.0])}, state)  # d = (1, 0), v = d
    torch.testing.assert_close(new["w"], torch.tensor([0.5, 2.0]))
    new, state = update(new, {"w": torch.tensor([0.5, 1.0])}, state)  # d = (0, 1), v = 0.9 (1, 0) + (0, 1)
    torch.testing.assert_close(new["w"], torch.tensor([0.5 - 0.5 * 0.9, 2.0 - 0.5 * 1.0]))
    torch.testing.assert_close(state["velocity"]["w"], torch.tensor([0.9, 1.0]))


def test_the_default_server_step_is_the_mean_itself():
    config = ExperimentConfig.from_dict(BASE)
    mean = {"w": torch.tensor([0.1, 0.2])}
    new, state = make_server_update(config)({"w": torch.tensor([3.0, 4.0])}, mean, {})
    assert new["w"] is mean["w"] and state == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"server_momentum": 0.9}, "server_momentum"),  # momentum without the optimiser that uses it
        ({"server_lr": 2.0}, "server_lr"),
        ({"server_optimizer": "adam"}, "server_optimizer"),
        ({"server_optimizer": "sgd", "server_momentum": 1.0}, "server_momentum"),
        ({"server_optimizer": "sgd", "server_lr": 0}, "server_lr"),
    ],
)
def test_bad_server_settings_are_refused_by_name(changes, field):
    with pytest.raises(HeteroFLError, match=rf"^{field}:"):
        ExperimentConfig.from_dict({**BASE, **changes})


def _federation(config: ExperimentConfig) -> Federation:
    dataset = image_dataset(n_train=300, cyclic_labels=True)
    return Federation(config, dataset, make_partition(dataset, "iid", 6, seed=0), torch.device("cpu"))


def test_server_momentum_changes_the_run_and_resumes_bitwise(tmp_path):
    plain = ExperimentConfig.from_dict(BASE)
    config = plain.replace(server_optimizer="sgd", server_momentum=0.9)
    federation = _federation(config)
    federation.build_models()
    state = federation.initial_state()
    for _ in range(2):
        state = federation.run_round(state)
    assert set(state.server_state["velocity"]) == set(state.params)
    save_checkpoint(tmp_path / "checkpoint.pt", config, state)
    straight = federation.run_round(state)

    resumed = _federation(config)
    resumed.build_models()
    state = load_checkpoint(tmp_path / "checkpoint.pt", config, torch.device("cpu"))
    again = resumed.run_round(state)
    for name, value in straight.params.items():
        assert torch.equal(value, again.params[name]), name
    for name, value in straight.server_state["velocity"].items():
        assert torch.equal(value, again.server_state["velocity"][name]), name

    baseline = _federation(plain)
    baseline.build_models()
    state = baseline.initial_state()
    for _ in range(3):
        state = baseline.run_round(state)
    assert state.server_state == {}
    assert not any(torch.equal(value, straight.params[name]) for name, value in state.params.items())

"""DepthFL's optional FedDyn correction against hand computations: the client's loss as the DepthFL authors
write it (task loss - <θ, h_k> + α/2 ||θ - θ_g||², through autograd), the client states and the server step
of a few rounds recomputed from the clients' outputs, FedDyn's invariant (the server's h is the mean of all
clients' h_k), a checkpoint that resumes bitwise with the per-client state, and the setting's refusals."""

from __future__ import annotations

import pytest
import torch
from synthetic import image_dataset

from heterofl.checkpoint import load_checkpoint, save_checkpoint
from heterofl.cli import _train_header
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.identity import run_name
from heterofl.local_training import ClientJob, LocalSettings, TrainMetrics, client_schedule, train_one_client
from heterofl.models import build_model
from heterofl.models.exits import exit_loss
from heterofl.submodel import parameters_of
from heterofl.tasks import make_task

ALPHA = 0.1
LEVELS = {1.0: 4, 0.5: 3, 0.25: 2, 0.125: 1}
BASE = {
    "dataset": "MNIST5k",
    "control": "1_4_0.5_iid_fix_a1-c1_bn_1_1",
    "method": "depthfl",
    "feddyn_alpha": ALPHA,
    "rounds": 4,
    "local_epochs": 1,
    "batch_size_train": 25,
    "engine": "sequential",
    "eval_rates": "global",
    "eval_every": 4,
}


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_a_client_trains_on_the_authors_feddyn_loss(float64):
    """Three SGD steps (momentum, weight decay, clipping) on a two-exit model with a random h_k: the same
    parameters as autograd through the loss written out by hand, the regulariser included."""
    dataset = image_dataset("MNIST5k", (1, 12, 12), 30, 10)
    task = make_task(dataset, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model("conv", 0.25, stage_exits="all", depth_of=LEVELS)
    reference = build_model("conv", 0.25, stage_exits="all", depth_of=LEVELS)
    reference.load_state_dict(model.state_dict())
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(1)
    h = {name: 0.05 * torch.randn(p.shape, generator=generator) for name, p in start.items()}
    labels = torch.zeros(10, dtype=torch.bool)
    labels[:7] = True
    job = ClientJob(3, 0.25, torch.arange(30), labels, seed=11, feddyn_h=h)
    settings = LocalSettings(0.05, 0.9, 5e-4, 1.0, 1, 10, True, distill_weight=0.5, feddyn_alpha=ALPHA)

    trained = train_one_client(model, task, job, settings, TrainMetrics())

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps, data_generator = client_schedule(task, job, settings)
    assert len(steps) == 3
    for step in steps:
        inputs, targets = task.batch(step, data_generator)
        optimizer.zero_grad()
        loss = exit_loss(reference(inputs), targets, labels, 0.5)
        for name, p in reference.named_parameters():
            loss = loss - torch.sum(p * h[name]) + ALPHA / 2 * torch.sum((p - start[name]) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        optimizer.step()
    by_hand = parameters_of(reference)
    for name, value in by_hand.items():
        torch.testing.assert_close(trained[name], value, atol=1e-12, rtol=1e-10, msg=name)
    plain = build_model("conv", 0.25, stage_exits="all", depth_of=LEVELS)
    plain.load_state_dict({k: v for k, v in start.items()}, strict=False)
    without = train_one_client(
        plain, task, job, LocalSettings(0.05, 0.9, 5e-4, 1.0, 1, 10, True, distill_weight=0.5), TrainMetrics()
    )
    assert not torch.allclose(without["blocks.0.conv.weight"], trained["blocks.0.conv.weight"])


def _federation(config: ExperimentConfig) -> Federation:
    dataset = image_dataset(n_train=400, cyclic_labels=True)
    federation = Federation(config, dataset, make_partition(dataset, "iid", 4, seed=0), torch.device("cpu"))
    federation.build_models()
    return federation


def test_client_states_and_the_server_step_follow_feddyn_round_by_round():
    """Every round recomputed from what each client received and returned: h_k <- h_k - α(θ_k - θ_g); per
    parameter, with c of the N = 4 clients holding it, h <- h - α (c/N)(mean - old), new = mean - h/α, and an
    unheld parameter keeps its value. After the run, the server's h is the mean of all clients' h_k."""
    config = ExperimentConfig.from_dict(BASE)
    federation = _federation(config)
    assert bool(federation.labels_held.all())  # IID: every client holds every label, so c is per layer
    records: list[tuple[int, dict, dict, dict]] = []
    train = federation.engine.train

    def spy(model, local, jobs, settings, metrics):
        out = train(model, local, jobs, settings, metrics)
        for i, job in enumerate(jobs):
            records.append((job.user, {n: v[i] for n, v in local.items()}, {n: v[i] for n, v in out.items()}))
        return out

    federation.engine.train = spy
    state = federation.initial_state()
    server_h = {name: torch.zeros_like(v) for name, v in state.params.items()}
    client_h: dict[int, dict[str, torch.Tensor]] = {}
    unheld_seen = False
    for _ in range(config.rounds):
        records.clear()
        old = state.params
        state = federation.run_round(state)
        assert len(records) == 2
        for user, start, trained in records:
            mine = client_h.setdefault(user, {})
            for name in trained:
                assert torch.equal(start[name], old[name])  # whole layers at full width
                mine[name] = mine.get(name, torch.zeros_like(old[name])) - ALPHA * (trained[name] - start[name])
                torch.testing.assert_close(state.client_state["feddyn_h"][user][name], mine[name])
        for name, value in old.items():
            holders = [trained[name] for _, _, trained in records if name in trained]
            if not holders:
                unheld_seen = True
                assert torch.equal(state.params[name], value), name
                continue
            mean = torch.stack(holders).mean(0)
            server_h[name] = server_h[name] - ALPHA * len(holders) / 4 * (mean - value)
            torch.testing.assert_close(state.params[name], mean - server_h[name] / ALPHA, msg=name)
            torch.testing.assert_close(state.server_state["h"][name], server_h[name], msg=name)
    assert unheld_seen  # some round sampled only shallow clients: the deep stages stood still
    for name, value in state.server_state["h"].items():
        total = sum(h[name] for h in client_h.values() if name in h)
        torch.testing.assert_close(value, total / 4, msg=name)


def test_a_checkpoint_carries_the_client_states_and_resumes_bitwise(tmp_path):
    config = ExperimentConfig.from_dict(BASE)
    federation = _federation(config)
    state = federation.initial_state()
    for _ in range(2):
        state = federation.run_round(state)
    assert len(state.client_state["feddyn_h"]) >= 2
    save_checkpoint(tmp_path / "checkpoint.pt", config, state)
    straight = federation.run_round(state)

    resumed = _federation(config)
    again = resumed.run_round(load_checkpoint(tmp_path / "checkpoint.pt", config, torch.device("cpu")))
    for name, value in straight.params.items():
        assert torch.equal(value, again.params[name]), name
    assert straight.client_state["feddyn_h"].keys() == again.client_state["feddyn_h"].keys()
    for user, h in straight.client_state["feddyn_h"].items():
        for name, value in h.items():
            assert torch.equal(value, again.client_state["feddyn_h"][user][name]), (user, name)
    for name, value in straight.server_state["h"].items():
        assert torch.equal(value, again.server_state["h"][name]), name


def test_feddyn_is_off_by_default_and_named_in_the_run_when_on():
    plain = ExperimentConfig.from_dict({k: v for k, v in BASE.items() if k != "feddyn_alpha"})
    assert plain.feddyn_alpha == 0
    assert "feddyn" not in run_name(plain)
    assert "feddyn" not in plain.result_fields()
    on = ExperimentConfig.from_dict(BASE)
    assert "+feddyn0.1" in run_name(on)
    assert on.config_hash() != plain.config_hash()
    assert "with DepthFL with FedDyn (alpha 0.1), 4 rounds" in _train_header(on, "out")
    assert "with DepthFL, 4 rounds" in _train_header(plain, "out")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"feddyn_alpha": -0.1}, "not a number >= 0"),
        ({"feddyn_alpha": "0.1"}, "not a number >= 0"),
        ({"method": "heterofl", "control": "1_4_0.5_iid_fix_a1-c1_bn_1_1"}, "only with method: depthfl"),
        ({"method": "inclusivefl"}, "only with method: depthfl"),
        ({"server_optimizer": "sgd"}, "only with server_optimizer: mean"),
    ],
)
def test_bad_feddyn_settings_are_refused_by_name(changes, words):
    with pytest.raises(HeteroFLError, match=r"^feddyn_alpha:") as error:
        ExperimentConfig.from_dict({**BASE, **changes})
    assert words in str(error.value)

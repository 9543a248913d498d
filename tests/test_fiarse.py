"""FIARSE (Wu et al., NeurIPS 2024): threshold, surrogate gradient, masked training, aggregation over the clients
that changed an entry, evaluation through the largest weights, and its accounting; each against a hand count."""

from __future__ import annotations

import math

import pytest
import torch
from synthetic import TinyImageTask, image_dataset

from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.federation import Federation
from heterofl.layout import FULL, LABELS
from heterofl.local_training import ClientJob, LocalSettings, TrainMetrics, train_one_client
from heterofl.methods.fiarse import (
    magnitude_threshold,
    maskable_names,
    masked_weights,
    mean_of_nonzero_updates,
    top_k_params,
)
from heterofl.models import build_model
from heterofl.submodel import parameters_of


def test_the_threshold_is_the_kth_largest_magnitude_over_every_masked_layer():
    params = {"a.weight": torch.tensor([3.0, -1.0, 2.0]), "b.bias": torch.tensor([0.5]), "norm.weight": torch.ones(9)}
    names = ("a.weight", "b.bias")  # N = 4; the norm is not maskable
    assert magnitude_threshold(params, names, 0.5).item() == 2.0  # k = 2: |3|, |2|
    assert magnitude_threshold(params, names, 0.3).item() == 2.0  # k = ceil(0.3 * 4) = 2
    assert magnitude_threshold(params, names, 0.25).item() == 3.0  # k = 1
    assert magnitude_threshold(params, names, 1.0).item() == 0.5  # k = N: every entry kept
    kept = top_k_params(params, names, 0.5)
    assert torch.equal(kept["a.weight"], torch.tensor([3.0, 0.0, 2.0])) and torch.equal(kept["b.bias"], torch.zeros(1))
    assert kept["norm.weight"] is params["norm.weight"]


def test_the_surrogate_gradient_is_the_closed_form_on_kept_entries_and_zero_elsewhere():
    weight = torch.tensor([0.5, -2.0, 3.0], requires_grad=True)
    threshold = torch.tensor(1.0)
    out = masked_weights({"w": weight}, ("w",), threshold)["w"]
    assert torch.equal(out.detach(), torch.tensor([0.0, -2.0, 3.0]))
    out.backward(torch.tensor([1.0, 1.0, 2.0]))
    # d(w m)/dw = m + w * sign(w) * 2t / (|w| + t)^2 = 1 + 2t|w| / (|w| + t)^2 on kept entries
    expected = torch.tensor([0.0, 1 + 4 / 9, 2 * (1 + 6 / 16)])
    torch.testing.assert_close(weight.grad, expected)
    # size 1 keeps every entry, zeros included (threshold 0): the gradient is then plain, not 0/0
    zeros = torch.tensor([0.0, 1.5], requires_grad=True)
    masked_weights({"w": zeros}, ("w",), torch.tensor(0.0))["w"].sum().backward()
    torch.testing.assert_close(zeros.grad, torch.tensor([1.0, 1.0]))


def test_maskable_parameters_are_the_convolutions_and_linears_only():
    names = maskable_names(build_model("conv", 1.0))
    params = dict(build_model("conv", 1.0).named_parameters())
    assert names and all(n.endswith((".weight", ".bias")) for n in names)
    assert "classifier.weight" in names and "classifier.bias" in names
    assert not any(params[n].dim() == 1 and n.endswith("weight") for n in names)  # no norm scales


def test_each_entry_is_averaged_over_the_clients_that_changed_it_and_hold_its_label():
    old = {"w": torch.zeros(3), "out": torch.zeros(2, 2)}
    layout = {"w": (FULL,), "out": (LABELS, FULL)}
    trained = {
        "w": torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]]),
        "out": torch.tensor([[[1.0, 1.0], [5.0, 5.0]], [[3.0, 0.0], [2.0, 2.0]]]),
    }
    held = torch.tensor([[True, False], [True, True]])  # client 0 lacks label 1: its row-1 change is ignored
    new, nonzero = mean_of_nonzero_updates(old, trained, layout, held)
    torch.testing.assert_close(new["w"], torch.tensor([2.0, 0.0, 2.0]))
    torch.testing.assert_close(new["out"], torch.tensor([[2.0, 1.0], [2.0, 2.0]]))
    assert nonzero.tolist() == [2 + 2, 1 + 3]


def test_a_masked_client_changes_no_entry_below_its_threshold_even_with_weight_decay():
    torch.manual_seed(0)
    model = build_model("conv", 1.0, scale=False)
    before = {k: v.clone() for k, v in parameters_of(model).items()}
    names = maskable_names(model)
    threshold = magnitude_threshold(before, names, 1 / 16)
    job = ClientJob(0, 1.0, torch.arange(40), torch.ones(10, dtype=torch.bool), 5, keep_fraction=1 / 16)
    settings = LocalSettings(lr=0.05, momentum=0.9, weight_decay=5e-4, clip_norm=1.0, epochs=1, batch_size=10,
                             use_mask=False)  # fmt: skip
    after = train_one_client(model, TinyImageTask(40, (1, 28, 28), seed=3), job, settings, TrainMetrics())
    changed_kept = 0
    for name in names:
        below = before[name].abs() < threshold
        assert torch.equal(after[name][below], before[name][below]), f"{name}: a masked entry moved"
        changed_kept += int((after[name][~below] != before[name][~below]).sum())
    assert changed_kept > 0
    norm_scales = [n for n in before if n not in names]
    assert any(not torch.equal(after[n], before[n]) for n in norm_scales)  # norms train densely


BASE = {
    "dataset": "MNIST5k",
    "control": "1_6_0.5_iid_fix_a1-e1_bn_1_1",
    "method": "fiarse",
    "rounds": 2,
    "local_epochs": 1,
    "batch_size_train": 10,
    "eval_every": 2,
}


def _federation(config: ExperimentConfig) -> Federation:
    dataset = image_dataset(n_train=240, cyclic_labels=True)
    return Federation(config, dataset, make_partition(dataset, "iid", 6, seed=0), torch.device("cpu"))


def test_a_fiarse_round_trains_dense_counts_dense_compute_and_a_sparse_upload():
    config = ExperimentConfig.from_dict(BASE)
    federation = _federation(config)
    federation.build_models()
    plain = _federation(config.replace(method="heterofl", control="1_6_0.5_iid_fix_a1_bn_1_1"))
    state = federation.initial_state()
    state = federation.run_round(state)
    row = state.history[-1]
    dense = plain.accounting.submodel_bytes(1.0)
    assert row["bytes_to_clients"] == row["bytes_from_clients"] == 3 * dense  # 3 clients, dense both ways
    assert 0 < row["sparse_bytes_from_clients"] < row["bytes_from_clients"]  # the e clients send few entries
    jobs, _ = federation._round_jobs(1, torch.Generator().manual_seed(0), {})
    assert {job.rate for job in jobs} == {1.0} and {job.keep_fraction for job in jobs} <= {1.0, 1 / 256}
    plain_jobs = [ClientJob(j.user, 1.0, j.indices, j.labels_held, j.seed) for j in jobs]
    settings = LocalSettings(lr=0.01, momentum=0.9, weight_decay=5e-4, clip_norm=1, epochs=1, batch_size=10,
                             use_mask=True)  # fmt: skip
    assert row["client_train_macs"] == plain.accounting.train_columns(plain_jobs, settings)["client_train_macs"]


def test_the_global_model_is_evaluated_at_every_rate_through_its_largest_weights():
    config = ExperimentConfig.from_dict(BASE)
    federation = _federation(config)
    federation.build_models()
    state = federation.initial_state()
    results = federation.evaluate(state.params)
    assert list(results) == ["a", "b", "c", "d", "e"]
    # rate a keeps every weight: the dense global model, as HeteroFL evaluates it at its own rate
    plain = _federation(config.replace(method="heterofl"))
    assert results["a"] == plain.evaluate(state.params)["a"]
    assert results["e"] != results["a"]  # 1/256 of the weights is another model
    n = sum(state.params[name].numel() for name in federation.maskable)
    kept = top_k_params(state.params, federation.maskable, 1 / 16)
    assert sum(int(kept[name].count_nonzero()) for name in federation.maskable) == math.ceil(n / 16)


def test_fiarse_runs_resume_bitwise():
    config = ExperimentConfig.from_dict({**BASE, "rounds": 3, "eval_every": 3})
    straight = _federation(config)
    straight.build_models()
    whole = straight.train()
    resumed = _federation(config)
    resumed.build_models()
    first = resumed.run_round(resumed.initial_state())
    rest = _federation(config)
    rest.build_models()
    final = rest.train(first)
    for name, value in whole.params.items():
        assert torch.equal(value, final.params[name]), name


@pytest.mark.parametrize("engine", ["batched", "auto"])
def test_fiarse_clients_train_one_at_a_time_under_every_engine(engine):
    config = ExperimentConfig.from_dict({**BASE, "engine": engine, "rounds": 1, "eval_every": 1})
    sequential = _federation(config.replace(engine="sequential"))
    sequential.build_models()
    other = _federation(config)
    other.build_models()
    a = sequential.run_round(sequential.initial_state())
    b = other.run_round(other.initial_state())
    for name, value in a.params.items():
        assert torch.equal(value, b.params[name]), name

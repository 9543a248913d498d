"""DepthFL and InclusiveFL against hand computations: the parameters a depth level holds, the local loss with
two exits, the per-layer mean over the clients that hold a layer, the exit ensemble, and the depth grammar."""

from __future__ import annotations

import math

import pytest
import torch
from synthetic import image_dataset

from heterofl.aggregation import aggregate
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation, depth_levels
from heterofl.methods.registry import depth_level
from heterofl.models import build_model
from heterofl.models.exits import distillation_weight, exit_loss
from heterofl.submodel import parameters_of

LEVELS = {1.0: 4, 0.5: 3, 0.25: 2, 0.125: 1}


def _depth_model(model: str, level: int, mode: str = "all", **options) -> torch.nn.Module:
    rate = {v: k for k, v in LEVELS.items()}[level]
    extra = {"in_channels": 3, "resnet_blocks": (1, 1, 1, 2)} if model == "resnet18" else {}
    return build_model(model, rate, stage_exits=mode, depth_of=LEVELS, **extra, **options)


def test_a_conv_client_of_level_two_holds_two_blocks_and_their_exits_at_full_width():
    held = parameters_of(_depth_model("conv", 2))
    by_hand = {f"blocks.{i}.{layer}.{p}" for i in (0, 1) for layer in ("conv", "norm") for p in ("weight", "bias")}
    by_hand |= {f"exits.{i}.linear.{p}" for i in (0, 1) for p in ("weight", "bias")}
    assert set(held) == by_hand
    assert held["blocks.1.conv.weight"].shape == (128, 64, 3, 3)  # full width: the conv's 64 and 128 channels
    assert held["exits.1.linear.weight"].shape == (10, 128)


def test_resnet_levels_hold_the_stem_stages_and_exits_and_only_the_deepest_level_the_final_head():
    names = {level: set(parameters_of(_depth_model("resnet18", level))) for level in (1, 2, 3, 4)}
    assert {n.split(".")[0] for n in names[1]} == {"conv1", "layers", "exits"}
    assert {n for n in names[1] if n.startswith("layers.")} == {n for n in names[1] if n.startswith("layers.0.")}
    assert {n.rsplit(".", 2)[0] for n in names[3] if n.startswith("exits.")} == {"exits.0", "exits.1", "exits.2"}
    assert "linear.weight" in names[4] and "n4.weight" in names[4] and "linear.weight" not in names[3]
    assert {n for n in names[4] if n.startswith("layers.")} >= {"layers.4.conv1.weight"}  # stage 4: blocks 3, 4
    for low, high in ((1, 2), (2, 3), (3, 4)):
        assert names[low] < names[high]


def test_exits_leave_the_shared_layers_initial_values_as_without_exits():
    torch.manual_seed(3)
    plain = parameters_of(build_model("conv", 1.0))
    torch.manual_seed(3)
    staged = parameters_of(build_model("conv", 1.0, stage_exits="all", depth_of=LEVELS))
    assert all(torch.equal(plain[name], staged[name]) for name in plain)


def test_the_loss_with_two_exits_is_both_cross_entropies_plus_the_weighted_mutual_kl():
    z1 = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, 0.1]], requires_grad=True)
    z2 = torch.tensor([[0.0, 2.0, 0.0], [1.0, -1.0, 0.3]], requires_grad=True)
    y = torch.tensor([0, 2])
    weight = 0.7

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    p1, p2 = [softmax(r) for r in z1.tolist()], [softmax(r) for r in z2.tolist()]
    ce = sum(-math.log(p[i][t]) for p in (p1, p2) for i, t in enumerate(y.tolist())) / 2
    kl = sum(q[i][c] * math.log(q[i][c] / p[i][c]) for q, p in ((p2, p1), (p1, p2)) for i in (0, 1) for c in (0, 1, 2))
    by_hand = ce + weight * kl / 2  # the KL terms are means over the batch of 2
    loss = exit_loss((z1, z2), y, None, weight)
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)

    # the teacher is held constant: exit 1's gradient is its CE's plus weight * (p1 - p2) / batch
    loss.backward()
    p1_t, p2_t = torch.tensor(p1), torch.tensor(p2)
    ce_grad = (p1_t - torch.nn.functional.one_hot(y, 3)) / 2
    torch.testing.assert_close(z1.grad, ce_grad + weight * (p1_t - p2_t) / 2, rtol=1e-5, atol=1e-6)


def test_the_distillation_weight_ramps_over_the_first_30_percent_of_the_run():
    assert distillation_weight(1, 1000) == pytest.approx(math.exp(-5))
    assert distillation_weight(151, 1000) == pytest.approx(math.exp(-5 * 0.25))
    assert distillation_weight(301, 1000) == distillation_weight(1000, 1000) == 1.0


def test_a_layer_is_averaged_over_the_clients_that_hold_it_only():
    torch.manual_seed(0)
    global_model = _depth_model("conv", 4)
    start = parameters_of(global_model)
    shallow = {k: torch.full_like(v, 1.0) for k, v in parameters_of(_depth_model("conv", 1)).items()}
    deep = {k: torch.full_like(v, 3.0) for k, v in parameters_of(_depth_model("conv", 3)).items()}
    labels = torch.ones(10, dtype=torch.bool)
    widths = global_model.widths
    mean = aggregate(start, global_model.layout, [(shallow, widths, labels), (deep, widths, labels)])
    assert torch.equal(mean["blocks.0.conv.weight"], torch.full_like(start["blocks.0.conv.weight"], 2.0))
    assert torch.equal(mean["exits.0.linear.weight"], torch.full_like(start["exits.0.linear.weight"], 2.0))
    assert torch.equal(mean["blocks.2.conv.weight"], torch.full_like(start["blocks.2.conv.weight"], 3.0))
    assert torch.equal(mean["blocks.3.conv.weight"], start["blocks.3.conv.weight"])  # nobody holds stage 4
    assert torch.equal(mean["classifier.weight"], start["classifier.weight"])


def test_evaluation_predicts_with_the_mean_of_the_exits_logits_and_training_returns_what_the_method_trains():
    torch.manual_seed(1)
    x = torch.randn(3, 1, 28, 28)
    model = _depth_model("conv", 3, norm="none").eval()
    h, exits = x, []
    for i, block in enumerate(model.blocks):
        h = block(h)
        exits.append(model.exits[i].linear(h.mean(dim=(2, 3))))
    torch.testing.assert_close(model(x), (exits[0] + exits[1] + exits[2]) / 3)
    assert len(model.train()(x)) == 3
    last = _depth_model("conv", 3, mode="last", norm="none")
    last.load_state_dict(model.state_dict())
    torch.testing.assert_close(last.train()(x), exits[2])


def test_letters_name_depth_levels_from_the_global_letter_down():
    assert [depth_level(r, 1.0, 4) for r in (1.0, 0.5, 0.25, 0.125, 0.0625)] == [4, 3, 2, 1, 0]
    assert [depth_level(r, 0.5, 4) for r in (0.5, 0.25, 0.125, 0.0625)] == [4, 3, 2, 1]
    config = ExperimentConfig.from_dict({"control": "1_10_0.5_iid_fix_a1-d1_bn_1_1", "method": "depthfl"})
    assert depth_levels(config) == LEVELS


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"control": "1_10_0.5_iid_fix_a1-e1_bn_1_1"}, "model_mode", "d (1 stages)"),
        ({"dataset": "WikiText2", "model": "transformer"}, "model", "conv, resnet18"),
        ({"model": "mlp"}, "model", "has no stages"),
    ],
)
def test_a_depth_method_refuses_a_letter_below_one_stage_and_a_model_without_stages(settings, field, words):
    raw = {"control": "1_10_0.5_iid_fix_a1-d1_bn_1_1", "method": "inclusivefl", **settings}
    with pytest.raises(HeteroFLError) as caught:
        ExperimentConfig.from_dict(raw)
    assert caught.value.field == field and words in str(caught.value)


def test_a_depthfl_round_evaluates_every_depth_and_counts_only_the_stages_a_client_holds():
    dataset = image_dataset("MNIST5k", (1, 28, 28), 120, 40)
    raw = {"control": "1_4_1_iid_fix_a1-d1_bn_1_1", "method": "depthfl", "rounds": 1, "local_epochs": 1}
    config = ExperimentConfig.from_dict({**raw, "dataset": dataset.name, "eval_rates": "all"})
    federation = Federation(config, dataset, make_partition(dataset, "iid", 4, seed=0), torch.device("cpu"))
    row = federation.run_round(federation.initial_state()).history[-1]
    assert {k.split("_")[0] for k in row if k.endswith("Global-Accuracy")} == {"a", "b", "c", "d"}
    full, one_stage = (sum(p.numel() for p in _depth_model("conv", level).parameters()) for level in (4, 1))
    assert row["bytes_from_clients"] == 4 * (2 * full + 2 * one_stage)  # two clients of each level, fp32

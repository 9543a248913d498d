"""Every registered model goes through what the harness does with a model, read from the registry alone.

For each :data:`heterofl.models.registry.MODELS` entry: it builds at every rate and declared norm, its layout
covers every parameter and extracts every submodel, its per-sample MACs are counted (and equal a batch-of-one
count wherever one is possible), and the summary, the report's Params/FLOPs and the grid cost estimator work.
The MLP (the model added through one registry line) is checked against counts made by hand, trained for two
rounds with every engine, and accounted. A spec that declares something its model does not do is refused.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from synthetic import image_dataset
from torch.nn.modules.batchnorm import _BatchNorm

from heterofl.cli import main
from heterofl.complexity import complexity_table, sample_forward_macs, true_macs
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.data.registry import DATASETS
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.grid import expand_runs
from heterofl.layout import LABELS
from heterofl.models import build_model
from heterofl.models.mlp import MLP_HIDDEN
from heterofl.models.registry import MODELS, ModelSpec, model_names, model_spec
from heterofl.rates import RATE_OF_LETTER
from heterofl.report.seed_stats import complexity, mode_cost
from heterofl.static_bn import fit_static_bn
from heterofl.submodel import extract, parameters_of

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from paper_grid_cost import MacCounter, run_flops  # noqa: E402

RATES = tuple(RATE_OF_LETTER.values())
NORM_CASES = [(name, norm) for name, spec in MODELS.items() for norm in spec.norms]


def _meta(name: str, rate: float, **options) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build_model(name, rate, **{**model_spec(name).counting_kwargs(), **options})


# -- the MLP by hand -----------------------------------------------------------------------------------------


def mlp_widths(rate: float) -> tuple[int, int]:
    return tuple(math.ceil(h * rate) for h in MLP_HIDDEN)


def mlp_macs(rate: float) -> int:
    """784 pixels -> h0 -> h1 -> 10 classes: one multiply-accumulate per weight."""
    h0, h1 = mlp_widths(rate)
    return 784 * h0 + h0 * h1 + h1 * 10


def mlp_params(rate: float) -> int:
    """Weights and biases of the three linear layers plus BN's gamma and beta per hidden unit."""
    h0, h1 = mlp_widths(rate)
    return (784 * h0 + h0) + (h0 * h1 + h1) + (h1 * 10 + 10) + 2 * (h0 + h1)


def test_mlp_hand_counts():
    assert mlp_macs(1.0) == 784 * 256 + 256 * 128 + 128 * 10 == 234_752
    assert mlp_macs(0.5) == 784 * 128 + 128 * 64 + 64 * 10 == 109_184
    assert mlp_params(1.0) == 235_914 and mlp_widths(0.0625) == (16, 8)


def test_mlp_summary_matches_the_hand_counts():
    table = complexity_table("mlp")
    assert list(table["macs_true"]) == [mlp_macs(r) for r in RATES]
    assert list(table["params"]) == [mlp_params(r) for r in RATES]
    # summary.py's quirk: Linear and affine BN are counted once per parameter tensor (twice); BN = 2 x elements
    assert list(table["flops_reference"]) == [2 * mlp_macs(r) + 2 * 2 * sum(mlp_widths(r)) for r in RATES]


# -- every registered model ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "norm"), NORM_CASES)
def test_every_model_builds_at_every_rate_and_its_layout_extracts_every_submodel(name, norm):
    spec = model_spec(name)
    global_model = _meta(name, 1.0, norm=norm)
    params = parameters_of(global_model)
    for rate in RATES:
        local = _meta(name, rate, norm=norm)
        layout = spec.layout(local)
        assert set(layout) == set(dict(local.named_parameters()))
        for exit_, names in spec.exit_parameters(local).items():
            assert names and all(layout[n][0] is LABELS for n in names), exit_
        extracted = extract(params, spec.layout(global_model), local.widths)
        assert {k: v.shape for k, v in extracted.items()} == {k: p.shape for k, p in local.named_parameters()}
        if "norm" in spec.kwargs:
            assert any(isinstance(m, _BatchNorm) for m in local.modules()) == (norm == "bn")


@pytest.mark.parametrize("name", model_names())
def test_every_model_counts_macs_per_sample(name):
    """Counted on two images and halved, or on one token row; where a batch of one can run (no BatchNorm),
    the count is the same, so the per-sample count is the batch-of-one count every model can take."""
    spec = model_spec(name)
    table = complexity(name, "1-1-1-2")  # complexity_table with the registry's sizes, cached
    no_bn = {"norm": "none"} if "norm" in spec.kwargs else {}
    for rate, counted in zip(RATES, table["macs_true"], strict=True):
        model = _meta(name, rate)
        per_sample = sample_forward_macs(model, spec.sample_shape, spec.input_size)
        one = true_macs(_meta(name, rate, **no_bn), spec.example_input().to("meta"))
        assert per_sample == counted == one > 0
    assert table["macs_true"].is_monotonic_decreasing and table["params"].is_monotonic_decreasing


def test_summarize_counts_every_registered_model(tmp_path):
    out = tmp_path / "complexity.csv"
    assert main(["summarize", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(dict.fromkeys(table["model"])) == list(model_names())
    assert (table.groupby("model").size() == len(RATES)).all()
    mlp = table[table["model"] == "mlp"]
    assert list(mlp["macs_true"]) == [mlp_macs(r) for r in RATES]


@pytest.mark.parametrize("name", model_names())
def test_report_cost_columns_and_grid_estimator_for_every_model(name):
    spec = model_spec(name)
    cost = mode_cost(name, "1-1-1-2", "a1-e1")  # the report's Params/FLOPs/Space of a combination
    table = complexity(name, "1-1-1-2")
    assert cost["params"] == pytest.approx(table["params"].iloc[[0, -1]].mean())
    assert cost["flops_reference"] == pytest.approx(table["flops_reference"].iloc[[0, -1]].mean())
    dataset = next(d for d in DATASETS.values() if d.kind == spec.kind)
    norm = spec.norms[0]
    config = ExperimentConfig(dataset=dataset.name, model=name, control=f"1_100_0.1_iid_fix_a1_{norm}_1_1")
    macs, _ = MacCounter()(config, 1.0)
    flops = run_flops(config, MacCounter())
    assert macs > 0 and flops["train"] > 0 and flops["server"] > 0
    if name == "mlp":
        assert macs == mlp_macs(1.0)


def test_committed_grids_are_all_still_accepted():
    """The norm check refuses nothing the repository's pipeline configs (the paper's grid included) ask for."""
    grids = [path for path in sorted((REPO / "config").glob("*.yaml")) if path.name != "devices.yaml"]  # a table
    assert len(grids) >= 6
    for path in grids:
        runs = expand_runs(yaml.safe_load(path.read_text()))
        assert runs, path.name


# -- the norm a model declares -------------------------------------------------------------------------------


def test_config_refuses_a_norm_the_model_does_not_declare():
    with pytest.raises(HeteroFLError) as info:
        ExperimentConfig(dataset="MNIST5k", model="mlp", control="1_10_0.1_iid_fix_a1_in_1_1")
    assert info.value.field == "norm" and info.value.allowed == "bn, ln, gn, none"
    with pytest.raises(HeteroFLError) as info:
        ExperimentConfig(dataset="WikiText2", model="transformer", control="1_10_0.1_iid_fix_a1_ln_1_1")
    assert info.value.field == "norm" and info.value.allowed == "bn"
    for norm in ("bn", "in", "ln", "gn", "none"):
        ExperimentConfig(dataset="MNIST5k", model="conv", control=f"1_10_0.1_iid_fix_a1_{norm}_1_1")


# -- specs that declare what their model does not do ----------------------------------------------------------


def _refused(make) -> HeteroFLError:
    with pytest.raises(HeteroFLError) as info:
        make()
    assert info.value.field == "model" and "'mlp'" in str(info.value)
    return info.value


MLP_SPEC = MODELS["mlp"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"exits": ("head",)}, "exit 'head' names no parameter"),
        ({"exits": ("blocks.0.linear",)}, "rows are not the labels"),
        ({"norms": ("bn", "in")}, "norm in, rate 1) cannot be built"),
        ({"builder": lambda *a, **k: _dropping_layout(*a, **k)}, "layout misses parameters ['classifier.bias']"),
        ({"builder": lambda r, s, **k: MLP_SPEC.build_function()(r, s, **{**k, "norm": "gn"})}, "BatchNorm layers"),
        ({"builder": "heterofl.models.mlp:build_perceptron"}, "builder 'heterofl.models.mlp:build_perceptron'"),
    ],
)
def test_a_spec_whose_model_contradicts_it_is_refused(changes, words):
    spec = dataclasses.replace(MLP_SPEC, **changes)  # declarations that look fine on their own
    assert words in str(_refused(spec.verify))


def _dropping_layout(rate, scaler_rate, **options):
    model = MLP_SPEC.build_function()(rate, scaler_rate, **options)
    del model.layout["classifier.bias"]
    return model


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"exits": ()}, "exits"),
        ({"exits": "classifier"}, "exits"),
        ({"norms": ("bn", "batch")}, "unknown norm"),
        ({"norms": ()}, "norms"),
        ({"kwargs": ("norm", "width_multiplier")}, "build_model does not pass"),
        ({"stages": 2}, "takes no stage_exits and depth"),
        ({"kwargs": ("num_classes",)}, "takes no norm option"),
        ({"kind": "audio"}, "kind"),
    ],
)
def test_a_spec_with_a_bad_declaration_is_refused_when_made(changes, words):
    assert words in str(_refused(lambda: dataclasses.replace(MLP_SPEC, **changes)))


def test_model_spec_hands_out_verified_specs_only(monkeypatch):
    broken = dataclasses.replace(MLP_SPEC, exits=("head",))
    monkeypatch.setitem(MODELS, "mlp", broken)
    _refused(lambda: model_spec("mlp"))
    _refused(lambda: build_model("mlp", 1.0))


def test_every_registered_spec_is_a_model_spec_and_verifies():
    for spec in MODELS.values():
        assert isinstance(spec, ModelSpec) and dataclasses.is_dataclass(spec)
        spec.verify()
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.norms = ("bn",)


# -- the MLP through the harness -----------------------------------------------------------------------------


def test_mlp_static_bn_and_its_clear_refusals():
    torch.manual_seed(0)
    model = build_model("mlp", 0.5)
    x = torch.randn(30, 1, 28, 28)
    fit_static_bn(model, x, batch_size=10)
    norm = model.blocks[0].norm
    assert isinstance(norm, torch.nn.BatchNorm1d) and int(norm.num_batches_tracked) == 3
    assert model(x[:1]).shape == (1, 10)  # evaluation uses the static statistics: a batch of one is fine
    model.train()
    with pytest.raises(HeteroFLError) as info:
        model(x[:1])  # BatchNorm1d has no statistics of one sample
    assert info.value.field == "norm"
    with pytest.raises(HeteroFLError) as info:
        model(torch.zeros(2, 3, 32, 32))  # a CIFAR image
    assert info.value.field == "model" and "1x28x28" in info.value.allowed


def test_mlp_federated_rounds_are_accounted_by_hand():
    """Four clients (two at rate a, two at b) train two rounds; every rate a..e is evaluated after each."""
    n_train, n_test = 80, 20
    dataset = image_dataset(n_train=n_train, n_test=n_test, cyclic_labels=True)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "model": "mlp",
            "control": "1_4_1_iid_fix_a1-b1_bn_1_1",
            "rounds": 2,
            "eval_every": 1,
            "local_epochs": 2,
            "batch_size_train": 6,
            "engine": "sequential",
            "eval_rates": "all",
        }
    )
    partition = make_partition(dataset, "iid", 4, seed=0)
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    rates = federation.fixed_rates
    sizes = [len(ix) for ix in partition.train_indices]
    assert sorted(rates) == [0.5, 0.5, 1.0, 1.0]
    state = federation.initial_state()
    every_rate = sum(mlp_macs(r) for r in RATES)
    for _ in range(2):
        state = federation.run_round(state)
        row = state.history[-1]
        assert row["bytes_to_clients"] == row["bytes_from_clients"] == 4 * sum(mlp_params(r) for r in rates)
        assert row["client_train_macs"] == 3 * 2 * sum(n * mlp_macs(r) for n, r in zip(sizes, rates, strict=True))
        assert row["server_static_bn_macs"] == n_train * every_rate
        assert row["server_eval_macs"] == n_test * every_rate
        assert all(math.isfinite(row[f"{letter}_Global-Loss"]) for letter in RATE_OF_LETTER)


def test_every_model_module_is_registered():
    """A model module that no ModelSpec builds is a model the config, summarize and the report cannot see."""
    import heterofl.models as models_package

    machinery = {"__init__", "registry", "layers", "exits"}  # the package's shared parts, not models
    modules = {p.stem for p in Path(models_package.__file__).parent.glob("*.py")} - machinery
    built = set()
    for spec in MODELS.values():
        options = {"scale": True, "resnet_blocks": (1, 1, 1, 2), **spec.counting_kwargs(), "norm": spec.norms[0]}
        with torch.device("meta"):
            model = spec.build(1.0, 1.0, **options)
        built.add(type(model).__module__.rsplit(".", 1)[1])
    assert built == modules


def test_report_counts_cifar100s_head_and_the_grid_estimator_its_size():
    """resnet18 on CIFAR100 differs from CIFAR10 only by the 100-way head: 90 more rows of ceil(512 x rate)
    weights and a bias each, in the report's cost columns and the grid estimator's MACs."""
    ten, hundred = complexity("resnet18", "1-1-1-2", "CIFAR10"), complexity("resnet18", "1-1-1-2", "CIFAR100")
    assert ten.equals(complexity("resnet18", "1-1-1-2"))  # CIFAR10's numbers as before
    widths = [math.ceil(512 * RATE_OF_LETTER[letter]) for letter in ten["letter"]]
    assert (hundred["params"] - ten["params"]).tolist() == [90 * (w + 1) for w in widths]
    assert (hundred["macs_true"] - ten["macs_true"]).tolist() == [90 * w for w in widths]
    cost = mode_cost("resnet18", "1-1-1-2", "a1-e1", "CIFAR100")
    assert cost["params"] - mode_cost("resnet18", "1-1-1-2", "a1-e1")["params"] == pytest.approx(90 * (513 + 33) / 2)
    control = "1_100_0.1_iid_fix_a1_bn_1_1"
    runs = {
        name: ExperimentConfig.from_dict({"dataset": name, "control": control, "rounds": 2, "eval_rates": "global"})
        for name in ("CIFAR10", "CIFAR100")
    }
    counter = MacCounter()
    assert counter(runs["CIFAR100"], 1.0)[0] - counter(runs["CIFAR10"], 1.0)[0] == 90 * 512
    flops = {name: run_flops(config, counter) for name, config in runs.items()}
    # 10 clients x 500 images x 5 epochs x 2 rounds, 3 forwards per sample, 2 FLOPs per MAC
    assert flops["CIFAR100"]["train"] - flops["CIFAR10"]["train"] == 2 * 3 * 90 * 512 * 10 * 500 * 5 * 2
    # static BN over the 50,000 training images and the test over 10,000, twice
    assert flops["CIFAR100"]["server"] - flops["CIFAR10"]["server"] == 2 * 90 * 512 * 60_000 * 2

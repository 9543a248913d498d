"""The model and dataset registries agree with each other and with everything that reads them."""

from __future__ import annotations

import re

import pytest
import torch

from heterofl import config
from heterofl.complexity import example_input
from heterofl.config import ExperimentConfig
from heterofl.data import DATASET_NAMES, Dataset, load_dataset
from heterofl.data.datasets import LOADERS
from heterofl.data.registry import DATASETS, dataset_names, dataset_spec, is_language, split_kind, wildcard_pattern
from heterofl.errors import HeteroFLError
from heterofl.models import MODEL_NAMES, build_model
from heterofl.models.registry import MODELS, model_names, model_spec
from heterofl.tasks import ImageTask, MaskedLMTask, make_task


def test_every_dataset_default_model_exists_and_fits():
    for name, spec in DATASETS.items():
        assert spec.name == name
        model = model_spec(spec.model)
        assert model.kind == spec.kind
        ExperimentConfig(dataset=name, control="1_10_0.1_iid_fix_a1_bn_1_1")  # the default model is accepted


def test_config_and_package_names_come_from_the_registries():
    assert config.DATASETS == dataset_names() == DATASET_NAMES == tuple(DATASETS)
    assert config.MODELS == model_names() == MODEL_NAMES == tuple(MODELS)
    assert {name: spec.model for name, spec in DATASETS.items()} == config.MODEL_OF_DATASET
    assert set(LOADERS) == set(DATASETS)


def test_default_model_sizes_match_their_dataset():
    """A model's complexity-counting defaults are the sizes of the first dataset it is the default model of
    (resnet18: CIFAR10's 10 classes; CIFAR100 shares its input, the report counts its own 100-way head)."""
    first_of = {}
    for spec in DATASETS.values():
        first_of.setdefault(spec.model, spec)
        model = model_spec(spec.model)
        assert model.num_classes == first_of[spec.model].num_classes
        if model.kind == "image":
            assert model.in_channels == spec.in_channels  # the counting image fits every dataset it serves
    assert first_of["resnet18"].name == "CIFAR10" and DATASETS["CIFAR100"].model == "resnet18"
    for name, model in MODELS.items():
        x = example_input(name)
        if model.kind == "language":
            assert x.shape == (1, model.input_size) and x.dtype == torch.int64
        else:
            assert x.shape == (1, model.in_channels, model.input_size, model.input_size) and x.is_floating_point()


def _field(call) -> HeteroFLError:
    with pytest.raises(HeteroFLError) as info:
        call()
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    "call",
    [
        lambda: dataset_spec("MNIST7"),
        lambda: ExperimentConfig(dataset="MNIST7"),
        lambda: load_dataset("MNIST7", download=False),
    ],
)
def test_unknown_dataset_names_the_field_and_allowed_names(call):
    error = _field(call)
    assert error.field == "dataset" and str(error).startswith("dataset:")
    assert all(name in error.allowed for name in DATASETS)


@pytest.mark.parametrize(
    "call",
    [
        lambda: model_spec("vgg"),
        lambda: ExperimentConfig(model="vgg"),
        lambda: build_model("vgg", 1.0),
        lambda: example_input("vgg"),
    ],
)
def test_unknown_model_names_the_field_and_allowed_names(call):
    error = _field(call)
    assert error.field == "model" and str(error).startswith("model:")
    assert all(name in error.allowed for name in MODELS)


def test_model_of_another_kind_is_refused_with_the_fitting_models():
    fitting = {kind: [name for name, spec in MODELS.items() if spec.kind == kind] for kind in ("image", "language")}
    assert fitting["image"] and fitting["language"]
    for dataset, kind, other in (("MNIST5k", "image", "language"), ("WikiText2", "language", "image")):
        for name in fitting[other]:
            error = _field(lambda name=name, dataset=dataset: ExperimentConfig(dataset=dataset, model=name))
            assert error.field == "model" and error.allowed == ", ".join(fitting[kind])
        for name in fitting[kind]:
            norm = MODELS[name].norms[0]
            control = f"1_10_0.1_iid_fix_a1_{norm}_1_1"
            assert ExperimentConfig(dataset=dataset, model=name, control=control).model == name


def test_split_kinds_per_dataset():
    assert [split_kind(s) for s in ("iid", "none", "non-iid-2", "dirichlet-0.1")] == [
        "iid",
        "none",
        "non-iid",
        "dirichlet",
    ]
    for split in ("non-iid-2", "dirichlet-0.3"):
        error = _field(
            lambda split=split: ExperimentConfig(dataset="WikiText2", control=f"1_10_0.1_{split}_fix_a1_bn_1_1")
        )
        assert error.field == "data_split_mode" and error.allowed == "iid, none"
        ExperimentConfig(dataset="CIFAR10", control=f"1_10_0.1_{split}_fix_a1_bn_1_1")
    ExperimentConfig(dataset="WikiText2", control="0_1_1_none_fix_a1_bn_1_1")


def test_language_lookups():
    assert [is_language(name) for name in DATASETS] == [False, False, False, False, True]
    assert not is_language("not-a-dataset")
    assert wildcard_pattern() == "MNIST|MNIST5k|CIFAR10|CIFAR100|WikiText2"
    # Snakemake matches whole paths, so CIFAR10 being a prefix of CIFAR100 must not cut the wildcard short
    for name in DATASETS:
        match = re.fullmatch(rf"runs/(?P<dataset>{wildcard_pattern()})/resnet18/x", f"runs/{name}/resnet18/x")
        assert match is not None and match["dataset"] == name
        match = re.fullmatch(
            rf"figures/(?P<dataset>{wildcard_pattern()})_(?P<split>[^/]+)\.pdf", f"figures/{name}_iid.pdf"
        )
        assert match is not None and match["dataset"] == name and match["split"] == "iid"
    text = Dataset(
        "WikiText2",
        torch.zeros(2, 8, dtype=torch.long),
        torch.zeros(2, 8),
        torch.zeros(1, 8),
        torch.zeros(1, 8),
        5,
        False,
    )
    images = Dataset(
        "MNIST5k", torch.zeros(4, 1, 2, 2), torch.zeros(4), torch.zeros(2, 1, 2, 2), torch.zeros(2), 10, False
    )
    assert text.is_text and not images.is_text
    assert isinstance(make_task(text, torch.device("cpu")), MaskedLMTask)
    assert isinstance(make_task(images, torch.device("cpu")), ImageTask)

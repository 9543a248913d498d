"""Control strings, model modes and experiment configs: round trips and one error per bad field."""

import pytest

from heterofl.config import Control, ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.rates import ModelMode


@pytest.mark.parametrize(
    "text",
    [
        "1_100_0.1_iid_fix_a2-b8_bn_1_1",
        "1_10_0.1_non-iid-2_dynamic_a1-b1-c1_gn_0_0",
        "1_100_0.01_iid_fix_a5-b5_none_1_0",
        "1_100_0.1_dirichlet-0.3_fix_a1-e1_ln_1_1",
        "0_1_1_none_fix_c1_in_0_1",
    ],
)
def test_control_string_round_trip(text):
    control = Control.parse(text)
    assert control.format() == text
    assert Control.parse(control.format()) == control


def test_control_fields_are_typed():
    control = Control.parse("1_100_0.1_iid_fix_a2-b8_bn_1_1")
    assert (control.fed, control.num_users, control.frac, control.scale, control.mask) == (1, 100, 0.1, 1, 1)
    assert control.mode.rates == (1.0, 0.5) and control.mode.proportions == (2, 8)


@pytest.mark.parametrize(
    "text, field",
    [
        ("2_100_0.1_iid_fix_a1_bn_1_1", "fed"),
        ("1_x_0.1_iid_fix_a1_bn_1_1", "num_users"),
        ("1_0_0.1_iid_fix_a1_bn_1_1", "num_users"),
        ("1_100_1.5_iid_fix_a1_bn_1_1", "frac"),
        ("1_100_abc_iid_fix_a1_bn_1_1", "frac"),
        ("1_100_0.1_noniid_fix_a1_bn_1_1", "data_split_mode"),
        ("1_100_0.1_non-iid-0_fix_a1_bn_1_1", "data_split_mode"),
        ("1_100_0.1_dirichlet-0_fix_a1_bn_1_1", "data_split_mode"),
        ("1_100_0.1_iid_fixed_a1_bn_1_1", "model_split_mode"),
        ("1_100_0.1_iid_fix_f1_bn_1_1", "model_mode"),
        ("1_100_0.1_iid_fix_b1-a1_bn_1_1", "model_mode"),
        ("1_100_0.1_iid_fix_a1-a2_bn_1_1", "model_mode"),
        ("1_100_0.1_iid_fix_a1-b_bn_1_1", "model_mode"),
        ("1_100_0.1_iid_fix_a0_bn_1_1", "model_mode"),
        ("1_100_0.1_iid_fix_a1_batchnorm_1_1", "norm"),
        ("1_100_0.1_iid_fix_a1_bn_2_1", "scale"),
        ("1_100_0.1_iid_fix_a1_bn_1_yes", "mask"),
        ("1_100_0.1_iid_fix_a1_bn_1", "control"),
        ("1_100_0.1_none_fix_a1_bn_1_1", "data_split_mode"),
    ],
)
def test_bad_control_field_names_field_and_allowed_values(text, field):
    with pytest.raises(HeteroFLError) as info:
        Control.parse(text)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert "allowed" in str(info.value)


def test_bare_letters_mean_equal_proportions():
    assert ModelMode.parse("a-b-c").proportions == (1, 1, 1)
    assert ModelMode.parse("a-b-c").probabilities == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_fix_assignment_matches_reference_examples():
    rates = ModelMode.parse("a2-b8").fixed_rates(100)
    assert rates[:20] == [1.0] * 20 and rates[20:] == [0.5] * 80
    assert ModelMode.parse("a1-b1-c1").fixed_rates(10) == [1.0] * 3 + [0.5] * 3 + [0.25] * 4


def test_dynamic_probabilities():
    assert ModelMode.parse("a2-b8").probabilities == (0.2, 0.8)


def test_experiment_config_fills_reference_hyperparameters():
    config = ExperimentConfig(dataset="CIFAR10", control=Control.parse("1_100_0.1_non-iid-2_fix_a1_bn_1_1"))
    assert config.model == "resnet18"
    assert (config.lr, config.rounds, config.milestones) == (0.1, 800, (300, 500))
    mnist = ExperimentConfig(dataset="MNIST", control=Control.parse("1_100_0.1_iid_fix_a1_bn_1_1"))
    assert (mnist.lr, mnist.rounds, mnist.local_epochs, mnist.batch_size_train) == (0.01, 200, 5, 10)


def test_every_dataset_has_reference_hyperparameters_for_each_split_it_allows():
    """CIFAR100 has no setting in HeteroFL's reference: it takes CIFAR10's (same images and model)."""
    from heterofl.data.registry import DATASETS

    for name, spec in DATASETS.items():
        for split in ("iid", "non-iid-2", "dirichlet-0.3", "none"):
            if spec.allows_split(split):
                users = "0_1_1" if split == "none" else "1_100_0.1"
                ExperimentConfig(dataset=name, control=Control.parse(f"{users}_{split}_fix_a1_bn_1_1"))
    for split, values in (("iid", (0.1, 400, (150, 250))), ("non-iid-2", (0.1, 800, (300, 500)))):
        config = ExperimentConfig(dataset="CIFAR100", control=Control.parse(f"1_100_0.1_{split}_fix_a1_bn_1_1"))
        assert config.model == "resnet18" and (config.lr, config.rounds, config.milestones) == values
        assert (config.local_epochs, config.batch_size_train, config.batch_size_test) == (5, 10, 50)


def test_experiment_config_dict_round_trip_and_unknown_key():
    config = ExperimentConfig.from_dict(
        {"dataset": "MNIST5k", "control": "1_20_0.25_iid_fix_a1-e1_bn_1_1", "rounds": 3, "mask": 0}
    )
    assert config.control.mask == 0
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(HeteroFLError, match="^roundz: is not a known setting"):
        ExperimentConfig.from_dict({"roundz": 3})


@pytest.mark.parametrize(
    "values, field",
    [
        ({"dataset": "MNIST7"}, "dataset"),
        ({"model": "vgg"}, "model"),
        ({"dataset": "MNIST5k", "model": "transformer"}, "model"),
        ({"rounds": -1}, "rounds"),
        ({"rounds": "ten"}, "rounds"),
        ({"lr": 0}, "lr"),
        ({"momentum": 2}, "momentum"),
        ({"milestones": [5, 3]}, "milestones"),
        ({"engine": "fast"}, "engine"),
        ({"eval_rates": "some"}, "eval_rates"),
        ({"resnet_blocks": [1, 1]}, "resnet_blocks"),
        ({"seed": -3}, "seed"),
    ],
)
def test_bad_experiment_settings(values, field):
    with pytest.raises(HeteroFLError) as info:
        ExperimentConfig.from_dict(values)
    assert info.value.field == field

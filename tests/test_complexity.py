"""The complexity summary against the spec's independently re-counted summary.py figures (spec section 8)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from heterofl.complexity import (
    COLUMNS,
    combination_row,
    complexity_table,
    example_input,
    format_table,
    reference_complexity,
    true_macs,
)
from heterofl.models import build_model


@pytest.fixture(scope="module")
def conv_table() -> pd.DataFrame:
    return complexity_table("conv")


@pytest.fixture(scope="module")
def resnet_paper_table() -> pd.DataFrame:
    return complexity_table("resnet18", resnet_blocks=(1, 1, 1, 2))


@pytest.fixture(scope="module")
def transformer_table() -> pd.DataFrame:
    return complexity_table("transformer")


def _m(values: pd.Series) -> list[str]:
    return [f"{v / 1e6:.2f}" for v in values]


def test_table_columns(conv_table: pd.DataFrame) -> None:
    assert tuple(conv_table.columns) == COLUMNS
    assert list(conv_table["letter"]) == ["a", "b", "c", "d", "e"]
    assert list(conv_table["rate"]) == [1.0, 0.5, 0.25, 0.125, 0.0625]


def test_conv_mnist_matches_spec(conv_table: pd.DataFrame) -> None:
    assert list(conv_table["params"]) == [1_556_874, 391_370, 98_922, 25_274, 6_594]
    assert conv_table["flops_reference"].iloc[0] == 80_504_320
    assert _m(conv_table["flops_reference"]) == ["80.50", "20.49", "5.31", "1.42", "0.40"]
    assert [f"{v:.2f}" for v in conv_table["space_mb"]] == ["5.94", "1.49", "0.38", "0.10", "0.03"]


def test_resnet18_paper_blocks_match_spec(resnet_paper_table: pd.DataFrame) -> None:
    a = resnet_paper_table.iloc[0]
    assert (a["params"], a["flops_reference"], f"{a['space_mb']:.2f}") == (9_622_090, 330_246_144, "36.71")
    assert list(resnet_paper_table["params"]) == [9_622_090, 2_408_746, 603_802, 151_762, 38_350]
    assert _m(resnet_paper_table["flops_reference"]) == ["330.25", "83.33", "21.22", "5.50", "1.47"]


def test_resnet18_head_blocks_match_spec() -> None:
    model = build_model("resnet18", 1.0, in_channels=3, resnet_blocks=(2, 2, 2, 2))
    ref = reference_complexity(model, example_input("resnet18"))
    assert (ref.params, ref.flops, f"{ref.space_mb:.2f}") == (11_172_170, 557_656_064, "42.62")


def test_transformer_matches_spec(transformer_table: pd.DataFrame) -> None:
    assert list(transformer_table["params"]) == [19_263_999, 9_107_967, 4_435_455, 2_200_575, 1_108_479]
    assert _m(transformer_table["flops_reference"]) == ["1367.97", "614.78", "290.09", "140.72", "69.28"]
    assert f"{transformer_table['space_mb'].iloc[0]:.2f}" == "73.49"


@pytest.mark.parametrize(
    ("mode", "ratio"),
    [("a1-e1", 0.502), ("a-b-c-d-e", 0.267), ("b-e", 0.508), ("b-c-d-e", 0.334), ("c-e", 0.533),
     ("c-d-e", 0.441), ("d-e", 0.630)],
)  # fmt: skip
def test_mnist_combination_ratios(conv_table: pd.DataFrame, mode: str, ratio: float) -> None:
    assert round(combination_row(conv_table, mode)["ratio"], 3) == ratio


@pytest.mark.parametrize(("mode", "ratio"), [("a1-e1", 0.529), ("a-b-c-d-e", 0.375)])
def test_transformer_combination_ratios(transformer_table: pd.DataFrame, mode: str, ratio: float) -> None:
    assert round(combination_row(transformer_table, mode)["ratio"], 3) == ratio


# The spec says CIFAR equals MNIST "except c-e 0.532 and c-d-e 0.438"; the spec's own CIFAR params give
# b-c-d-e 0.332 and d-e 0.626 too (MNIST: 0.334, 0.630), so only the rows that hold are asserted here.
@pytest.mark.parametrize(("mode", "ratio"), [("a-e", 0.502), ("a-b-c-d-e", 0.267), ("c-e", 0.532), ("c-d-e", 0.438)])
def test_cifar_combination_ratios(resnet_paper_table: pd.DataFrame, mode: str, ratio: float) -> None:
    assert round(combination_row(resnet_paper_table, mode)["ratio"], 3) == ratio


def test_combination_row_is_proportion_weighted(conv_table: pd.DataFrame) -> None:
    row = combination_row(conv_table, "a2-b8")
    assert row["params"] == pytest.approx((2 * 1_556_874 + 8 * 391_370) / 10)
    assert row["ratio"] == pytest.approx(row["params"] / 1_556_874)


def test_quirk_counts_per_parameter_tensor() -> None:
    """Linear with bias counts twice, bias-free conv once, ReLU/MaxPool modules zero times."""
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)
    )
    wrapped = nn.Sequential(model)  # the root and containers are not hooked
    ref = reference_complexity(wrapped, torch.zeros(1, 1, 6, 6))
    conv = 3 * 3 * 1 * 2 * 4 * 4
    linear = 1 * 8 * 3
    assert ref.flops == conv * 1 + linear * 2
    assert ref.params == 2 * 9 + 8 * 3 + 3


def test_true_macs_conv_by_hand(conv_table: pd.DataFrame) -> None:
    conv1 = 28 * 28 * 64 * (1 * 3 * 3)  # full resolution
    conv2 = 14 * 14 * 128 * (64 * 3 * 3)  # after the first 2x2 max-pool
    conv3 = 7 * 7 * 256 * (128 * 3 * 3)
    conv4 = 3 * 3 * 512 * (256 * 3 * 3)  # MaxPool2d(2) floors 7 -> 3
    linear = 512 * 10
    assert conv_table["macs_true"].iloc[0] == conv1 + conv2 + conv3 + conv4 + linear == 39_974_912


def test_true_macs_transformer_by_hand(transformer_table: pd.DataFrame) -> None:
    s, e, h, n = 64, 256, 512, 33_279
    per_layer = 4 * s * e * e + 2 * s * e * h + 2 * s * s * e  # q,k,v,o + FFN + QK^T and AV
    assert transformer_table["macs_true"].iloc[0] == 4 * per_layer + s * e * e + s * e * n


def test_true_macs_shrink_with_rate(conv_table: pd.DataFrame, transformer_table: pd.DataFrame) -> None:
    for table in (conv_table, transformer_table):
        assert table["macs_true"].iloc[-1] < table["macs_true"].iloc[0]
        assert table["macs_true"].is_monotonic_decreasing
    model = build_model("resnet18", 0.0625, in_channels=3)
    assert true_macs(model, example_input("resnet18")) < 1.5e6


def test_forward_leaves_mode_alone() -> None:
    model = build_model("conv", 1.0).eval()
    reference_complexity(model, example_input("conv"))
    true_macs(model, example_input("conv"))
    assert not model.training


def test_format_table_human_units(conv_table: pd.DataFrame) -> None:
    text = format_table(conv_table)
    lines = text.splitlines()
    assert lines[0].startswith("| model | letter |")
    assert "| conv | a | 1 | 1,556,874 | 80.50M | 39.97M | 5.94 |" in lines
    assert len(lines) == 2 + 5

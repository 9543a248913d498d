"""Extraction: identity at the global rate, the published sizes, and forward passes equal to hand slicing."""

import math

import pytest
import torch
import torch.nn.functional as F

from heterofl.models import build_model, model_names, model_spec
from heterofl.submodel import extract, load_into, parameters_of

SPEC_PARAMS = {  # spec section 8 (independent re-count of the reference's summary.py)
    "conv": [1_556_874, 391_370, 98_922, 25_274, 6_594],
    "resnet18": [9_622_090, 2_408_746, 603_802, 151_762, 38_350],
    "transformer": [19_263_999, 9_107_967, 4_435_455, 2_200_575, 1_108_479],
}
RATES = [1.0, 0.5, 0.25, 0.125, 0.0625]
KWARGS = {name: model_spec(name).counting_kwargs() for name in SPEC_PARAMS}  # the published sizes


@pytest.mark.parametrize("name", model_names())
def test_extraction_at_global_rate_is_identity(name):
    torch.manual_seed(0)
    model = build_model(name, 1.0, **model_spec(name).counting_kwargs())
    params = parameters_of(model)
    local = extract(params, model.layout, model.widths)
    for key, value in params.items():
        assert local[key].shape == value.shape
        assert torch.equal(local[key], value)


@pytest.mark.parametrize("name", sorted(SPEC_PARAMS))
def test_extracted_parameter_counts_match_spec(name):
    global_model = build_model(name, 1.0, **KWARGS[name])
    params = parameters_of(global_model)
    for rate, expected in zip(RATES, SPEC_PARAMS[name], strict=True):
        local_model = build_model(name, rate, **KWARGS[name])
        local = extract(params, global_model.layout, local_model.widths)
        assert sum(v.numel() for v in local.values()) == expected
        for key, p in local_model.named_parameters():
            assert local[key].shape == p.shape, key


def test_extraction_relative_to_a_smaller_global_rate():
    """With global rate b, a client of rate d gets ceil(64*0.125)=8 channels of the 32 global ones."""
    global_model = build_model("conv", 0.5)
    local_model = build_model("conv", 0.125, global_rate=0.5)
    local = extract(parameters_of(global_model), global_model.layout, local_model.widths)
    assert local["blocks.0.conv.weight"].shape == (8, 1, 3, 3)
    assert local_model.blocks[0].scaler.rate == 0.25


def test_conv_submodel_forward_equals_hand_sliced_computation():
    torch.manual_seed(1)
    global_model = build_model("conv", 1.0, norm="none", scale=False)
    w = parameters_of(global_model)
    rate = 0.25
    local_model = load_into(
        build_model("conv", rate, norm="none", scale=False),
        extract(w, global_model.layout, build_model("conv", rate).widths),
    )
    local_model.eval()
    x = torch.randn(3, 1, 28, 28)
    out = x
    cin = 1
    for i, base in enumerate((64, 128, 256, 512)):
        cout = math.ceil(base * rate)
        out = F.relu(
            F.conv2d(out, w[f"blocks.{i}.conv.weight"][:cout, :cin], w[f"blocks.{i}.conv.bias"][:cout], padding=1)
        )
        if i < 3:
            out = F.max_pool2d(out, 2)
        cin = cout
    expected = out.mean((2, 3)) @ w["classifier.weight"][:, :cin].T + w["classifier.bias"]
    torch.testing.assert_close(local_model(x), expected)


def test_resnet_shortcut_block_equals_hand_sliced_computation():
    torch.manual_seed(2)
    global_model = build_model("resnet18", 1.0, in_channels=3, norm="none", scale=False)
    w = parameters_of(global_model)
    local_model = build_model("resnet18", 0.5, in_channels=3, norm="none", scale=False)
    load_into(local_model, extract(w, global_model.layout, local_model.widths))
    block = local_model.layers[1]  # first block of stage 2: stride 2, 32 -> 64 channels, 1x1 shortcut
    assert block.shortcut is not None
    x = torch.randn(2, 32, 8, 8)
    act = F.relu(x)
    shortcut = F.conv2d(act, w["layers.1.shortcut.weight"][:64, :32], stride=2)
    hidden = F.conv2d(act, w["layers.1.conv1.weight"][:64, :32], stride=2, padding=1)
    expected = F.conv2d(F.relu(hidden), w["layers.1.conv2.weight"][:64, :64], padding=1) + shortcut
    torch.testing.assert_close(block(x), expected)


def test_transformer_attention_is_sliced_head_wise():
    torch.manual_seed(3)
    global_model = build_model("transformer", 1.0, num_classes=50)
    w = parameters_of(global_model)
    local_model = build_model("transformer", 0.5, num_classes=50)
    load_into(local_model, extract(w, global_model.layout, local_model.widths))
    # Head-wise index: 8 heads of 32 global columns, keep the first 16 of each head.
    head_index = torch.tensor([h * 32 + j for h in range(8) for j in range(16)])
    prefix = torch.arange(128)
    mha = local_model.layers[0].mha.eval()
    p = "layers.0.mha."
    x = torch.randn(2, 5, 128)

    def proj(name, rows, cols):
        return x @ w[p + f"linear_{name}.weight"][rows][:, cols].T + w[p + f"linear_{name}.bias"][rows]

    q, k, v = (proj(n, head_index, prefix).unflatten(-1, (8, 16)).transpose(1, 2) for n in "qkv")
    attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(128 / 8), -1)
    merged = (attention @ v).transpose(1, 2).flatten(2)
    expected = merged @ w[p + "linear_o.weight"][prefix][:, head_index].T + w[p + "linear_o.bias"][prefix]
    torch.testing.assert_close(mha(x), expected)
    # The [MASK] row and all vocabulary rows are kept; embedding columns are a prefix.
    assert local_model.token_embedding.weight.shape == (51, 128)
    torch.testing.assert_close(local_model.token_embedding.weight, w["token_embedding.weight"][:, :128])

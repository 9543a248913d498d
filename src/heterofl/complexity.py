"""Params, FLOPs and Space of the HeteroFL models, as the reference's ``summary.py`` counts them (spec 8).

Two FLOP-like numbers are reported on purpose:

* ``flops_reference`` reproduces ``summary.py`` exactly, including its quirk: each module's FLOPs are
  added once *per parameter tensor* of that module, so Linear/biased-conv/affine-norm layers count twice,
  bias-free convs once and parameter-free modules (ReLU, pooling, GELU, Dropout, Scaler) not at all.
  The paper's FLOPs columns follow this convention, so it is what one compares with the paper.
* ``macs_true`` is the real multiply-accumulate count of one forward pass of one sample: every conv and
  linear once (no bias adds) plus the attention matmuls QK^T and AV; norms, activations, pooling and
  embedding look-ups are excluded. It is what one would quote as the cost of a submodel.

Both are per sample, counted on :func:`counting_input`: images two at a time, then divided (training-mode
BatchNorm refuses a batch of one sample whose features are single values: the MLP's BatchNorm1d, or a
BatchNorm2d on a 1x1 map); every count is linear in the batch, so this equals summary.py's batch of one.
:func:`sample_forward_macs` is the one per-sample MAC count of the code base: the summary, the round
accounting (``accounting.py``), the auto engine's choice (``batched.py``) and the grid cost estimator.

Our models apply ReLU and the global average pool functionally where the reference used modules; under
the quirk parameter-free modules are added zero times, so this does not change ``flops_reference``
(the published totals below are reproduced exactly, see ``tests/test_complexity.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from heterofl.model_cost import combination_row, format_table  # torch-free, kept here for callers
from heterofl.models import build_model, model_spec
from heterofl.rates import RATE_OF_LETTER

LETTERS = ("a", "b", "c", "d", "e")
COLUMNS = ("model", "letter", "rate", "params", "flops_reference", "macs_true", "space_mb")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)
_ACTIVATIONS = (nn.ReLU, nn.GELU)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_PARAM_NAMES = ("weight", "bias")


@dataclass(frozen=True)
class Complexity:
    """One model's summary.py figures: parameter count, quirky FLOPs and fp32 size in MiB."""

    params: int
    flops: int
    space_mb: float


def space_mb(params: int) -> float:
    """fp32 size in MiB, as summary.py: params * 32 bits / 8 / 1024**2."""
    return params * 32 / 8 / 1024**2


def _own_params(module: nn.Module) -> list[Tensor]:
    """The module's own trainable ``weight``/``bias`` (recurse=False), so nothing is counted twice."""
    return [p for n, p in module.named_parameters(recurse=False) if n in _PARAM_NAMES and p.requires_grad]


def _is_affine(module: nn.Module) -> bool:
    return bool(getattr(module, "affine", False) or getattr(module, "elementwise_affine", False))


def _module_flops(module: nn.Module, inputs: tuple, output: Tensor, batch: int = 1) -> int:
    """summary.py's ``compute_flops`` for one call of ``module`` per sample of a ``batch``; 0 for anything it
    does not know. summary.py ran one sample: its conv formula ignores the batch, the others count elements."""
    if isinstance(module, nn.Conv2d):
        h_out, w_out = output.shape[-2:]
        k_h, k_w = module.kernel_size
        flops = k_h * k_w * module.in_channels * module.out_channels * h_out * w_out
        if module.bias is not None:
            flops += module.out_channels * h_out * w_out
        return int(flops)
    if isinstance(module, nn.Linear):
        rows = inputs[0].numel() // module.in_features // batch
        return int(rows * module.in_features * module.out_features)
    if isinstance(module, _NORMS):
        return int(inputs[0].numel() // batch * (2 if _is_affine(module) else 1))
    if isinstance(module, _ACTIVATIONS):
        return int(output.numel() // batch)
    if isinstance(module, _POOLS):
        return int(inputs[0].numel() // batch)
    return 0  # Embedding, Dropout, Scaler, Identity, custom blocks, AdaptiveAvgPool, ...


def reference_complexity(model: nn.Module, example_input: Tensor) -> Complexity:
    """Params/FLOPs/Space exactly as the reference's summary.py: hooks, one train-mode forward, the quirk.

    Every module except containers and the root is hooked; FLOPs are taken at a module's first call and
    added once per own parameter tensor (the published quirk, spec section 8). FLOPs are per sample of
    ``example_input``'s batch (summary.py's batch of one; :func:`counting_input` gives two images).
    """
    params: dict[int, int] = {}
    flops: dict[int, int] = {}
    batch = int(example_input.shape[0])

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        key = id(module)
        if key in flops:  # summary.py counts a module at its first call only
            return
        own = _own_params(module)
        params[key] = sum(p.numel() for p in own)
        flops[key] = _module_flops(module, inputs, output, batch) * len(own)

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if m is not model and not isinstance(m, _CONTAINERS)
    ]
    was_training = model.training
    try:
        model.train()
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    total_params = sum(params.values())
    return Complexity(params=total_params, flops=sum(flops.values()), space_mb=space_mb(total_params))


def true_macs(model: nn.Module, example_input: Tensor) -> int:
    """Real multiply-accumulates of one forward pass: convs, linears and attention matmuls, each once.

    Uses torch's FlopCounterMode, which counts 2 FLOPs per MAC for mm/addmm/bmm/conv (bias adds,
    norms, activations and embedding look-ups are not counted), so the MAC count is its total / 2.
    """
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.train()
        with torch.no_grad(), counter:
            model(example_input)
    finally:
        model.train(was_training)
    total = counter.get_total_flops()
    return int(total // 2)


IMAGES_PER_COUNT = 2
"""Images are counted two at a time and the count halved (the module docstring says why)."""


def counting_input(
    sample_shape: tuple[int, ...] = (),
    length: int = 0,
    device: torch.device | str = "meta",
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Zeros that one sample's cost is counted on: :data:`IMAGES_PER_COUNT` images of ``sample_shape``, or
    (language models, an empty shape) one token row of ``length`` columns. Counts divide by its batch."""
    if not sample_shape:
        return torch.zeros(1, length, dtype=torch.long, device=device)
    return torch.zeros(IMAGES_PER_COUNT, *sample_shape, device=device, dtype=dtype)


def sample_forward_macs(model: nn.Module, sample_shape: tuple[int, ...] = (), length: int = 0) -> int:
    """True MACs of one forward pass of one sample: an image of ``sample_shape``, or (language models, an
    empty shape) a token row of ``length`` columns; on the model's device (meta for shape-only models).

    The count runs a training-mode forward, which may draw dropout masks: it draws them from a forked
    generator, so measuring in the middle of a run (``batched.AutoEngine``) leaves the run's random stream,
    and with it a resumed run, bitwise as it was.
    """
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else None
    x = counting_input(sample_shape, length, device, dtype)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        return true_macs(model, x) // x.shape[0]


def example_input(model_name: str) -> Tensor:
    """The single example summary.py feeds each model: an MNIST image, a CIFAR image or a 1x64 token chunk."""
    return model_spec(model_name).example_input()


def complexity_table(model_name: str, letters: tuple[str, ...] = LETTERS, **model_kwargs) -> pd.DataFrame:
    """One row per rate letter, so submodel cost can be compared in both conventions side by side.

    ``model_kwargs`` go to ``build_model`` on top of the dataset defaults (MNIST conv, CIFAR10 resnet18,
    WikiText2 transformer), e.g. ``resnet_blocks=(2, 2, 2, 2)``.
    """
    spec = model_spec(model_name)
    kwargs = {**spec.counting_kwargs(), **model_kwargs}
    x = counting_input(spec.sample_shape, spec.input_size, "cpu")
    rows = []
    for letter in letters:
        rate = RATE_OF_LETTER[letter]
        torch.manual_seed(0)
        model = build_model(model_name, rate, **kwargs)
        ref = reference_complexity(model, x)
        rows.append(
            {
                "model": model_name,
                "letter": letter,
                "rate": rate,
                "params": ref.params,
                "flops_reference": ref.flops,
                "macs_true": sample_forward_macs(model, spec.sample_shape, spec.input_size),
                "space_mb": ref.space_mb,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


__all__ = [
    "COLUMNS",
    "LETTERS",
    "Complexity",
    "combination_row",
    "complexity_table",
    "counting_input",
    "example_input",
    "format_table",
    "reference_complexity",
    "sample_forward_macs",
    "space_mb",
    "true_macs",
]

"""Content checks of a checkpoint or final model that its digest cannot make: does it fit this run?

A digest proves a file is as written, not that what was written belongs here: a hand-edited or foreign
checkpoint with a recomputed digest would resume with renamed, reshaped or NaN parameters, a round past
the end, or a random state of the wrong size, and write the result to ``model.pt``. Each check raises one
:class:`HeteroFLError` naming the file and the first thing wrong.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heterofl.errors import HeteroFLError

_PYTHON_STATE = len(random.getstate()[1])
_NUMPY_KEYS = len(np.random.get_state()[1])


def check_params(params: Any, template: dict[str, torch.Tensor], path: str | Path, field: str) -> None:
    """``params`` must have exactly ``template``'s names, shapes and dtypes, and only finite values."""
    allowed = f"the parameters of this run's model ({len(template)} tensors)"
    if not isinstance(params, dict) or not all(isinstance(v, torch.Tensor) for v in params.values()):
        raise HeteroFLError(field, f"{path} holds no mapping of parameter tensors", allowed)
    missing, extra = sorted(set(template) - set(params)), sorted(set(params) - set(template))
    if missing or extra:
        parts = [
            f"lacks {', '.join(missing[:3])}" if missing else "",
            f"has unknown {', '.join(extra[:3])}" if extra else "",
        ]
        raise HeteroFLError(field, f"{path} {' and '.join(p for p in parts if p)}", allowed)
    for name, want in template.items():
        got = params[name]
        if tuple(got.shape) != tuple(want.shape):
            raise HeteroFLError(
                field, f"{path}: {name} has shape {tuple(got.shape)}, the model's is {tuple(want.shape)}", allowed
            )
        if got.dtype != want.dtype:
            raise HeteroFLError(field, f"{path}: {name} has dtype {got.dtype}, the model's is {want.dtype}", allowed)
        if not bool(torch.isfinite(got).all()):
            raise HeteroFLError(field, f"{path}: {name} holds NaN or infinite values", "finite parameters")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _byte_state(value: Any, size: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1 and value.numel() == size


def check_round(blob: dict[str, Any], rounds: int, path: str | Path) -> None:
    """The round is an integer in [0, rounds] and the history holds rounds 1..round, in order."""
    round_ = blob["round"]
    if not _is_int(round_) or not 0 <= round_ <= rounds:
        raise HeteroFLError(
            "checkpoint", f"{path} is at round {round_!r}, outside this run's 0..{rounds}", "delete it to start afresh"
        )
    history = blob["history"]
    seen = (
        [row.get("round") if isinstance(row, dict) else None for row in history] if isinstance(history, list) else None
    )
    if seen != list(range(1, round_ + 1)):
        raise HeteroFLError(
            "checkpoint",
            f"{path} is at round {round_} but its history holds rounds {seen if seen is None else _span(seen)}",
            f"rounds 1..{round_}, once each; delete it to start afresh",
        )


def _span(values: list) -> str:
    return ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "") if values else "none"


def check_random_states(blob: dict[str, Any], path: str | Path) -> None:
    """The sampler and the python, numpy and torch random states have the types and sizes this process uses."""
    problem = None
    rng = blob["rng"]
    torch_size = torch.get_rng_state().numel()
    if not _byte_state(blob["sampler_state"], torch.Generator().get_state().numel()):
        problem = "the client sampler's state"
    elif not isinstance(rng, dict) or not {"python", "numpy", "torch", "cuda"} <= set(rng):
        problem = "the random states (python, numpy, torch, cuda)"
    else:
        python, numpy_state = rng["python"], rng["numpy"]
        if not (
            isinstance(python, list | tuple)
            and len(python) == 3
            and _is_int(python[0])
            and isinstance(python[1], list | tuple)
            and len(python[1]) == _PYTHON_STATE
            and all(_is_int(v) for v in python[1])
            and (python[2] is None or isinstance(python[2], float) and math.isfinite(python[2]))
        ):
            problem = "the python random state"
        elif not (
            isinstance(numpy_state, list | tuple)
            and len(numpy_state) == 5
            and numpy_state[0] == "MT19937"
            and isinstance(numpy_state[1], torch.Tensor)
            and numpy_state[1].numel() == _NUMPY_KEYS
            and _is_int(numpy_state[2])
            and 0 <= numpy_state[2] <= _NUMPY_KEYS
        ):
            problem = "the numpy random state"
        elif not _byte_state(rng["torch"], torch_size):
            problem = "the torch random state"
        elif not isinstance(rng["cuda"], list | tuple) or not all(isinstance(s, torch.Tensor) for s in rng["cuda"]):
            problem = "the CUDA random states"
    if problem is not None:
        raise HeteroFLError(
            "checkpoint", f"{path} has a malformed {problem} (wrong type or size)", "delete it to start afresh"
        )

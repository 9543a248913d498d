"""Where a run computes and in which arithmetic: the device choice and the precision policy.

Kept apart from the round (``federation.py``) because the CLI checks ``--device`` before any work starts and
the benchmarks set the same policy.
"""

from __future__ import annotations

import re

import torch

from heterofl.errors import HeteroFLError


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or when asked for), else the CPU; ``auto`` or None chooses."""
    if requested and requested != "auto":
        # torch.device also takes mps, meta, xpu ...: kinds this code never runs on, so refused by name
        if not isinstance(requested, str) or re.fullmatch(r"cpu|cuda(:\d+)?", requested) is None:
            raise HeteroFLError("device", f"{requested!r} is not a device", "auto, cpu, cuda, cuda:N")
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise HeteroFLError("device", "cuda was requested but no GPU is available", "auto, cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise HeteroFLError(
                "device", f"{requested!r} asks for GPU {device.index} of {count}", f"cuda:0..cuda:{count - 1}"
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_full_fp32() -> None:
    """Keep CUDA convolutions and matrix products in full fp32, as the reference's results were computed.

    PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) by default on Ampere and later GPUs; a run
    on a GPU would then differ from the same run on the CPU by more than float rounding.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def set_precision(precision: str, device: torch.device) -> None:
    """Apply ``precision`` (config.PRECISIONS) to the device's matmuls and convolutions.

    fp32 keeps CUDA in full fp32 (``use_full_fp32``); tf32 lets cuDNN and cuBLAS use TF32 (a 10-bit
    mantissa, about 2-8x faster on Ampere and later) and exists only on CUDA, so a CPU run asking for it is
    refused rather than silently run in fp32 under a tf32 name. bf16 is an autocast in local training
    (``LocalSettings.autocast``) and leaves these flags in fp32.
    """
    if precision == "tf32":
        if device.type != "cuda":
            raise HeteroFLError("precision", f"tf32 needs a CUDA device; this run is on {device.type}", "fp32, bf16")
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    elif device.type == "cuda":
        use_full_fp32()

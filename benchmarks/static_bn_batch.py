"""Where static BN loses time on the CPU: batch size and memory layout of the statistics pass, side by side.

The statistics pass (``static_bn.fit_static_bn``) is one forward pass of the global model over the whole
training set. Its speed depends on how much of each layer's activations stays in cache: a batch of 1,000
MNIST images gives 200 MB of first-layer activations at rate a, far beyond any cache, while a batch of 50
fits. This script times the pass at several batch sizes in both layouts (NCHW and channels_last),
interleaved so machine noise hits all variants alike, and reports each as a share of the fp32 matmul peak
measured in the same run. In channels_last it also compares the two ways of computing the accurate NHWC
moments: ``two-pass`` (``static_bn._accurate_batch_norm``: cascaded mean, then summed squared deviations) and
``welford`` (``torch.var_mean``, which the library used until 2026-11-28). The batch size is part of what
sBN computes (the statistics are averages of per-batch moments: ``stats_batch_size`` is a result-defining
setting), so this measures the cost of each choice; it does not make them interchangeable.

Usage: ``python benchmarks/static_bn_batch.py [--rate 1.0] [--images 4000] [--repeats 3] [--threads 2]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from heterofl import static_bn
from heterofl.complexity import true_macs
from heterofl.models import build_model
from heterofl.provenance import cpu_model


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _welford_batch_norm(norm: torch.nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``static_bn._accurate_batch_norm`` as it was until 2026-11-28: moments by ``torch.var_mean``."""
    flat = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    var, mean = torch.var_mean(flat, dim=0, correction=1)
    return static_bn.normalize_with_moments(norm, x, mean, var, flat.shape[0])


def fit(model: torch.nn.Module, inputs: torch.Tensor, batch: int, layout: str) -> float:
    """Seconds for one statistics pass with the given batch size and layout (nchw, nhwc, nhwc-welford)."""
    original_layout, original_norm = static_bn.fast_layout, static_bn._accurate_batch_norm
    if layout == "nchw":
        static_bn.fast_layout = lambda m, d: torch.contiguous_format
        model.to(memory_format=torch.contiguous_format)
    if layout == "nhwc-welford":
        static_bn._accurate_batch_norm = _welford_batch_norm
    try:
        start = time.perf_counter()
        static_bn.fit_static_bn(model, inputs, batch)
        return time.perf_counter() - start
    finally:
        static_bn.fast_layout, static_bn._accurate_batch_norm = original_layout, original_norm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="10,50,100,250,1000")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.python_version()}")
    inputs = torch.rand(args.images, 1, 28, 28)
    model = build_model("conv", args.rate)
    flops = 2 * true_macs(model, inputs[:2]) / 2 * args.images  # train-mode BN needs two images
    variants = [(b, layout) for b in map(int, args.batches.split(",")) for layout in ("nchw", "nhwc", "nhwc-welford")]
    times: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
    peak = matmul_peak()
    for _ in range(args.repeats):
        for batch, layout in variants:
            times[(batch, layout)].append(fit(model, inputs, batch, layout))
    peak = max(peak, matmul_peak())
    print(f"fp32 matmul peak {peak:.0f} GFLOP/s; {flops / 1e9:.1f} GFLOP per pass ({args.images} images)")
    print(f"{'batch':>6} {'layout':>13} {'seconds':>8} {'%peak':>6}")
    for batch, layout in variants:
        seconds = statistics.median(times[(batch, layout)])
        print(f"{batch:>6} {layout:>13} {seconds:8.3f} {100 * flops / seconds / 1e9 / peak:6.1f}")


if __name__ == "__main__":
    main()

"""How far one CUDA round lands from the same round on the CPU, parameter by parameter.

``tests/test_device.py::test_cuda_round_matches_the_cpu_round`` says only pass or fail; this prints, for the
test's cases, each engine on each device against the CPU's sequential engine: the largest absolute
difference, the largest difference relative to the tolerance ``atol + rtol * |cpu|`` (above 1 fails the
test), and the parameters that differ most. The CPU's own batched engine is the yardstick: it sums in
another order too, so its distance is what float32 reordering alone does to one round.

``--float64`` runs everything in float64 (data, models, SGD): summation order then moves a round by about
1e-12, so a CUDA-vs-CPU distance far above that is a difference in what is computed, not in rounding.

Usage: ``python benchmarks/cuda_vs_cpu.py [--cases resnet,conv] [--float64]`` (needs CUDA for the CUDA rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
if "--float64" in sys.argv:  # before the test module builds its datasets
    torch.set_default_dtype(torch.float64)
from test_device import CUDA_TOLERANCE, _train  # noqa: E402


def distance(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> tuple[float, float, list]:
    """Largest absolute difference, largest tolerance ratio, and the five worst parameters."""
    worst = []
    for name, ref in want.items():
        diff = (got[name].double().cpu() - ref.double()).abs()
        allowed = CUDA_TOLERANCE["atol"] + CUDA_TOLERANCE["rtol"] * ref.double().abs()
        worst.append((float((diff / allowed).max()), float(diff.max()), float(ref.double().abs().max()), name))
    worst.sort(reverse=True)
    return max(w[1] for w in worst), worst[0][0], worst[:5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="resnet,conv")
    parser.add_argument("--float64", action="store_true", help="data, models and training in float64")
    args = parser.parse_args()
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for case in args.cases.split(","):
        reference = _train(case, "cpu", "sequential", rounds=1)
        print(
            f"{case} ({torch.get_default_dtype()}): cpu sequential train_loss {reference.history[-1]['train_loss']:.6f}"
        )
        for device in devices:
            for engine in ("sequential", "batched"):
                if (device, engine) == ("cpu", "sequential"):
                    continue
                state = _train(case, device, engine, rounds=1)
                max_abs, max_ratio, worst = distance(state.params, reference.params)
                print(
                    f"{case}: {device} {engine}: train_loss {state.history[-1]['train_loss']:.6f}, "
                    f"max |diff| {max_abs:.3g}, max diff/tolerance {max_ratio:.3g}"
                )
                for ratio, diff, scale, name in worst:
                    print(f"    {name}: diff/tol {ratio:.3g}, |diff| {diff:.3g}, max |cpu| {scale:.3g}")


if __name__ == "__main__":
    main()

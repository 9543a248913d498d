"""Arithmetic of a whole experiment grid, and the device-hours it needs at a measured throughput.

Counts, for every run of a pipeline config (default ``config/paper.yaml``: the paper's 677 runs), the true
FLOPs its rounds take, the way ``history.csv``'s accounting columns count them (``heterofl.accounting``):
local training = 3 x forward MACs x samples (every client sample every local epoch, expected over the
model mode's proportions), static BN = one forward pass over the training set and the test = one over the
test set at every evaluated rate, every ``eval_every`` rounds. MACs come from the real models built on the
``meta`` device; dataset sizes are the real ones (MNIST 60,000/10,000, CIFAR10 and CIFAR100 50,000/10,000,
WikiText2 2,088,628/245,569 tokens). One FLOP = one multiply or add (2 per MAC).

Device-hours = FLOPs / achieved FLOP/s. The achieved rate is what ``round_speed.py`` measures (``--tflops``,
e.g. the paper-scale rounds of ``benchmarks/device_check.sh`` on a GPU); the grid's FLOPs do not depend on it.

``--seconds-per-round`` instead takes measured wall seconds of one round per group (e.g. the H200's in
``benchmarks/gpu/``): hours = runs x rounds x seconds per round, which counts what FLOPs do not (kernel launches
at batch size 10, per-round static BN and test). A group without a measurement shows "-".

Usage: ``python benchmarks/paper_grid_cost.py [--config config/paper.yaml] [--tflops 5,10,20]
[--seconds-per-round "MNIST conv=5.31,CIFAR10 resnet18=22.1"]``
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import yaml

from heterofl.accounting import meta_model, sample_forward_macs
from heterofl.config import ExperimentConfig
from heterofl.data.registry import DATASETS
from heterofl.grid import expand_runs
from heterofl.models import model_factory
from heterofl.rates import RATE_OF_LETTER, letters_up_to
from heterofl.static_bn import batch_norms
from heterofl.tasks import BPTT

SIZES = {
    "MNIST": (60_000, 10_000),
    "CIFAR10": (50_000, 10_000),
    "CIFAR100": (50_000, 10_000),
    "MNIST5k": (4_000, 1_000),
}
"""Training and test images of the image datasets."""
WIKITEXT2_TOKENS = (2_088_628, 245_569)
"""WikiText2 training and test tokens (the reference's word-level vocabulary)."""
SHAPES = {"MNIST": (1, 28, 28), "CIFAR10": (3, 32, 32), "CIFAR100": (3, 32, 32), "MNIST5k": (1, 28, 28)}


class MacCounter:
    """Forward MACs of one sample per (architecture, rate), on the meta device (shapes only)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[int, bool]] = {}

    def __call__(self, config: ExperimentConfig, rate: float) -> tuple[int, bool]:
        """(MACs of one image or one token, whether the model has BatchNorm)."""
        control = config.control
        key = (
            config.model,
            config.dataset,
            config.mode.global_rate,
            control.norm,
            config.uses_scaler,
            config.resnet_blocks,
            rate,
        )
        if key not in self._cache:
            language = config.dataset not in SHAPES
            build = model_factory(
                config.model,
                global_rate=config.mode.global_rate,
                norm=control.norm,
                scale=config.uses_scaler,
                num_classes=DATASETS[config.dataset].num_classes,  # the head: 10, 100 or the 33,279-word vocabulary
                in_channels=DATASETS[config.dataset].in_channels,
                resnet_blocks=config.resnet_blocks,
            )
            model = meta_model(build, rate)
            shape = () if language else SHAPES[config.dataset]
            macs = sample_forward_macs(model, shape, BPTT) // (BPTT if language else 1)
            self._cache[key] = (macs, bool(batch_norms(model)))
        return self._cache[key]


def run_flops(config: ExperimentConfig, macs: MacCounter) -> dict[str, float]:
    """Training and server FLOPs of a whole run (expected over the model mode's rate mix)."""
    language = config.dataset not in SHAPES
    n_train, n_test = WIKITEXT2_TOKENS if language else SIZES[config.dataset]
    mode = config.mode
    per_sample = sum(p * macs(config, r)[0] for p, r in zip(mode.probabilities, mode.rates, strict=True))
    clients = max(1, round(config.control.frac * config.control.num_users))
    samples_per_round = clients * (n_train / config.control.num_users) * config.local_epochs
    train = 2 * 3 * per_sample * samples_per_round * config.rounds
    evaluations = math.ceil(config.rounds / config.eval_every)
    letters = (
        letters_up_to(mode.global_rate) if config.eval_rates == "all" else [next(iter(letters_up_to(mode.global_rate)))]
    )
    server = 0.0
    for letter in letters:
        forward, has_bn = macs(config, RATE_OF_LETTER[letter])
        server += 2 * forward * (n_test + (n_train if has_bn else 0))
    return {"train": train, "server": server * evaluations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/paper.yaml")
    parser.add_argument("--tflops", default="5,10,20", help="achieved TFLOP/s to convert FLOPs into device-hours")
    parser.add_argument(
        "--seconds-per-round",
        default="",
        help='measured seconds per round per group, e.g. "MNIST conv=5.31,CIFAR10 resnet18=22.1"',
    )
    args = parser.parse_args()
    measured = {
        name.strip(): float(value)
        for name, value in (item.split("=") for item in args.seconds_per_round.split(",") if item)
    }
    with open(args.config) as handle:
        pipeline = yaml.safe_load(handle)
    runs = expand_runs(pipeline)
    macs = MacCounter()
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"runs": 0, "train": 0.0, "server": 0.0, "rounds": 0})
    for run in runs:
        flops = run_flops(run.config, macs)
        group = totals[f"{run.config.dataset} {run.config.model}"]
        group["runs"] += 1
        group["train"] += flops["train"]
        group["server"] += flops["server"]
        group["rounds"] += run.config.rounds
    rates = [float(t) for t in args.tflops.split(",")]
    print(f"{args.config}: {len(runs)} runs; PFLOP = 1e15 floating-point operations")
    print(
        "| dataset model | runs | training PFLOP | static BN + test PFLOP | total PFLOP | "
        + " | ".join(f"hours at {t:g} TFLOP/s" for t in rates)
        + (" | rounds | hours at measured s/round |" if measured else " |")
    )
    print("|---|---:|---:|---:|---:|" + "---:|" * len(rates) + ("---:|---:|" if measured else ""))
    grand = {"runs": 0, "train": 0.0, "server": 0.0, "rounds": 0}
    measured_hours, unmeasured = 0.0, []
    for name, group in [*sorted(totals.items()), ("all", grand)]:
        if name != "all":
            for k in grand:
                grand[k] += group[k]
        total = group["train"] + group["server"]
        hours = " | ".join(f"{total / (t * 1e12) / 3600:,.0f}" for t in rates)
        wall = ""
        if measured:
            if name == "all":
                wall = f" | {group['rounds']:,} | {measured_hours:,.0f}" + (
                    f" (without {', '.join(unmeasured)})" if unmeasured else ""
                )
            elif name in measured:
                measured_hours += group["rounds"] * measured[name] / 3600
                wall = f" | {group['rounds']:,} | {group['rounds'] * measured[name] / 3600:,.0f}"
            else:
                unmeasured.append(name)
                wall = f" | {group['rounds']:,} | -"
        print(
            f"| {name} | {group['runs']} | {group['train'] / 1e15:,.1f} | {group['server'] / 1e15:,.1f} "
            f"| {total / 1e15:,.1f} | {hours}{wall} |"
        )


if __name__ == "__main__":
    main()

"""What the simulated clock adds to a round: its own time (draws, per-client bytes, MACs and seconds, the
schedule) against the round it schedules, measured in one process on the default grid's setting.

MNIST5k (offline), conv, 20 clients, 5 per round, dynamic a-b-c-d-e, the default grid's local settings
(1 epoch, batch 10); fleet ``long-tail`` of ``config/devices.yaml``, waiting for every client so that both
runs train the same clients. Prints the median round time with and without the clock, the median time of the
clock step itself, and their ratio.

Usage: ``python benchmarks/clock_overhead.py [--rounds 6] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from heterofl.config import ExperimentConfig
from heterofl.data import load_dataset, make_partition
from heterofl.devices import assign_fleet, read_device_table
from heterofl.federation import Federation, LocalSettings, learning_rate

ROOT = Path(__file__).resolve().parents[1]
BASE = {"dataset": "MNIST5k", "control": "1_20_0.25_iid_dynamic_a1-b1-c1-d1-e1_bn_1_1", "local_epochs": 1,
        "eval_every": 1000, "rounds": 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("MNIST5k", str(ROOT / "data"))
    partition = make_partition(dataset, "iid", 20, seed=0)
    fleet = assign_fleet(read_device_table(ROOT / "config" / "devices.yaml"), "long-tail", 20, 0)
    plain = Federation(ExperimentConfig.from_dict(BASE), dataset, partition, torch.device("cpu"))
    timed_config = ExperimentConfig.from_dict({**BASE, "fleet": "long-tail"})
    timed = Federation(timed_config, dataset, partition, torch.device("cpu"), fleet=fleet)
    rounds: dict[str, list[float]] = {"plain": [], "clock": []}
    clock_step: list[float] = []
    states = {"plain": plain.initial_state(), "clock": timed.initial_state()}
    for _ in range(args.rounds):
        for name, federation in (("plain", plain), ("clock", timed)):
            started = time.perf_counter()
            states[name] = federation.run_round(states[name])
            rounds[name].append(time.perf_counter() - started)
        round_ = states["clock"].round
        jobs, _ = timed._round_jobs(round_, torch.Generator().manual_seed(round_), {})
        settings = LocalSettings(learning_rate(timed_config, round_), 0.9, 5e-4, 1.0, 1, 10, True)
        started = time.perf_counter()
        timed._clock(round_, jobs, settings, 0.0)
        clock_step.append(time.perf_counter() - started)
    plain_s, clock_s, step_s = (statistics.median(v) for v in (rounds["plain"], rounds["clock"], clock_step))
    print(f"rounds: {args.rounds}, threads: {args.threads}, torch {torch.__version__}")
    print(f"median round without the clock: {plain_s:.3f} s; with it: {clock_s:.3f} s")
    print(f"median clock step: {1000 * step_s:.3f} ms = {100 * step_s / plain_s:.3f} % of a round")


if __name__ == "__main__":
    main()

"""Seconds per HeteroFL round on MNIST5k, through the public API only, so old and new code can be timed alike.

Uses only what both this tree and the code before the method harness (selections, ``method``) provide:
``ExperimentConfig.from_dict``, ``load_dataset``, ``make_partition``, ``Federation(config, data, partition,
device, engine)``, ``initial_state`` and ``run_round``. The config sets no ``method`` (HeteroFL is the
default in the new code and the only method in the old). Run one tree, then the other, on the same idle
machine, and compare the printed ``seconds_per_round`` (median of ``--rounds`` rounds after one untimed
warm-up round; each round includes training, aggregation, static BN and the global-rate test)::

    PYTHONPATH=/path/to/old/src python benchmarks/heterofl_round.py --rounds 10
    python benchmarks/heterofl_round.py --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from heterofl.config import ExperimentConfig
from heterofl.data import load_dataset, make_partition
from heterofl.federation import Federation


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--control", default="1_100_0.1_iid_fix_a1-b1-c1-d1-e1_bn_1_1")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": args.control,
            "rounds": 10**6,
            "engine": args.engine,
            "eval_rates": "global",
        }
    )
    data = load_dataset("MNIST5k")
    control = config.control
    partition = make_partition(data, control.data_split_mode, control.num_users, config.seed, config.non_iid_variant)
    device = torch.device(args.device)
    federation = Federation(config, data, partition, device, args.engine)
    state = federation.run_round(federation.initial_state())  # warm-up, not timed
    seconds = []
    for _ in range(args.rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        state = federation.run_round(state)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    print(f"seconds_per_round={statistics.median(seconds):.4f}")


if __name__ == "__main__":
    main()

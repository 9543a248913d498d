"""Seconds per HeteroFL round on MNIST5k, through the public API only, so old and new code can be timed alike.

Uses only what both this tree and the code before the method harness (selections, ``method``) provide:
``ExperimentConfig.from_dict``, ``load_dataset``, ``make_partition``, ``Federation(config, data, partition,
device, engine)``, ``initial_state`` and ``run_round``. The config sets no ``method`` (HeteroFL is the
default in the new code and the only method in the old). One call times one tree and prints
``seconds_per_round`` (median of ``--rounds`` rounds after one untimed warm-up round; each round includes
training, aggregation, static BN and the global-rate test)::

    PYTHONPATH=/path/to/old/src python benchmarks/heterofl_round.py --rounds 10
    python benchmarks/heterofl_round.py --rounds 10

``--old-src`` times both on the same machine in one run: for every ``--controls`` workload it runs this
script in a subprocess against this tree's ``src`` and the older checkout's, alternately, ``--repeats``
times each, and ``--out`` writes per workload the median of each tree's runs and their ratio::

    python benchmarks/heterofl_round.py --old-src /path/to/old/src --repeats 4 --out benchmarks/heterofl_round.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from heterofl.config import ExperimentConfig
from heterofl.data import load_dataset, make_partition
from heterofl.federation import Federation

SRC = Path(__file__).resolve().parents[1] / "src"
CONTROLS = "1_100_0.1_iid_fix_a1-b1-c1-d1-e1_bn_1_1,1_100_0.1_iid_fix_e1_bn_1_1"
FIELDS = ["control", "rounds", "repeats", "new_s", "old_s", "new_over_old", "new_runs", "old_runs", "measured"]


def seconds_per_round(args: argparse.Namespace) -> float:
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
    return statistics.median(seconds)


def timed_in(src: Path, control: str, args: argparse.Namespace) -> float:
    """This script's ``seconds_per_round`` for ``control`` with the package at ``src`` (a subprocess)."""
    command = [sys.executable, __file__, "--control", control, "--rounds", str(args.rounds)]
    command += ["--threads", str(args.threads), "--engine", args.engine, "--device", args.device]
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1].removeprefix("seconds_per_round="))


def revision(src: Path) -> str:
    found = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or str(src)


def compare(args: argparse.Namespace) -> list[dict]:
    """Both trees alternately, ``--repeats`` times per control; a row per control."""
    old_src = Path(args.old_src).resolve()
    measured = f"{datetime.date.today()} new {revision(SRC)} old {revision(old_src)}"
    rows = []
    for control in args.controls.split(","):
        runs: dict[str, list[float]] = {"new": [], "old": []}
        for _ in range(args.repeats):
            for tree, src in (("new", SRC), ("old", old_src)):
                runs[tree].append(timed_in(src, control, args))
                print(f"{control} {tree}: {runs[tree][-1]:.4f} s per round", flush=True)
        new, old = statistics.median(runs["new"]), statistics.median(runs["old"])
        print(f"{control}: median {new:.2f} new vs {old:.2f} old ({new / old:.2f}x)")
        rows.append(
            {
                "control": control,
                "rounds": args.rounds,
                "repeats": args.repeats,
                "new_s": new,
                "old_s": old,
                "new_over_old": new / old,
                "new_runs": ";".join(f"{s:.4f}" for s in runs["new"]),
                "old_runs": ";".join(f"{s:.4f}" for s in runs["old"]),
                "measured": measured,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--control", default="1_100_0.1_iid_fix_a1-b1-c1-d1-e1_bn_1_1")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--old-src", help="an older checkout's src/: time it and this tree alternately")
    parser.add_argument("--controls", default=CONTROLS, help="comma-separated controls timed with --old-src")
    parser.add_argument("--repeats", type=int, default=4, help="runs of each tree per control with --old-src")
    parser.add_argument("--out", help="CSV: per control the trees' median seconds per round and new / old")
    args = parser.parse_args(argv)
    if args.old_src:
        rows = compare(args)
    else:
        seconds = seconds_per_round(args)
        print(f"seconds_per_round={seconds:.4f}")
        rows = [{"control": args.control, "rounds": args.rounds, "repeats": 1, "new_s": seconds}]
        rows[0]["measured"] = f"{datetime.date.today()} {revision(SRC)}"
    if args.out:
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

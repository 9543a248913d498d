"""What the write guard and the input checks cost against one default-grid run.

Times, in one process, every guard and check a ``heterofl train`` + ``heterofl evaluate`` of a default-grid run
makes (output paths, run folder with its config.yaml hash, log file, partition seed, a checkpoint's round,
random states and parameters against a freshly built model, history rounds), median of ``--repeats``; then
trains that run for real (MNIST5k, conv, 20 clients, dynamic a-b-c-d-e, the grid's settings: ``heterofl
train`` as the pipeline calls it, in a subprocess) and prints its wall time and the ratio.

Usage: ``python benchmarks/guard_overhead.py [--repeats 20] [--rounds 20] [--threads 1]
[--csv benchmarks/guard_overhead.csv]`` (``--csv``: the run's seconds, the guard's milliseconds and the ratio)
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from heterofl.checkpoint import read_checkpoint
from heterofl.cli import build_config, guard_files
from heterofl.csv_checks import require_contiguous_rounds
from heterofl.data import load_dataset
from heterofl.federation import Federation
from heterofl.output_paths import check_outputs
from heterofl.runner import check_same_partition, load_partition
from heterofl.state_checks import check_params, check_random_states, check_round
from heterofl.write_guard import check_run_folder

ROOT = Path(__file__).resolve().parents[1]
CONTROL = "1_20_0.25_iid_dynamic_a1-b1-c1-d1-e1_bn_1_1"
SETTINGS = ("batch_size_train=20", "eval_every=5", "eval_rates=global", "last_k=2", "local_epochs=1", "lr=0.05",
            "milestones=[15]")  # fmt: skip


def train(out: Path, rounds: int, threads: int) -> float:
    argv = [sys.executable, "-m", "heterofl", "train", "--dataset", "MNIST5k", "--control", CONTROL, "--seed", "0"]
    for pair in (*SETTINGS, f"rounds={rounds}"):
        argv += ["--set", pair]
    argv += ["--out", str(out), "--threads", str(threads), "--device", "cpu", "--quiet"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def guard_and_checks(run: Path, config, blob: dict, partition, federation: Federation) -> None:
    """Every check that train (resuming from its checkpoint) and evaluate add, in the order they run; reading
    the checkpoint and the partition, which they did before, is left out."""
    check_outputs({"--out": run}, {"--log": None})
    check_run_folder(run, config)
    guard_files({"--log": run / "train.log"}, own_run=run, replaces=("train.log",))
    check_round(blob, config.rounds, run / "checkpoint.pt")
    check_random_states(blob, run / "checkpoint.pt")
    check_same_partition(partition, blob.get("partition_hash"), None, "the checkpoint was trained on")
    check_params(blob["params"], federation.global_template(), run / "checkpoint.pt", "checkpoint")
    guard_files({"--out": run / "eval.csv"}, own_run=run, replaces=("eval.csv",))
    require_contiguous_rounds(pd.read_csv(run / "history.csv")["round"], run / "history.csv", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20, help="the default grid's 20")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", help="write rounds, run_s, guard_ms and overhead_pct here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="guard_overhead_"))
    try:
        run = scratch / "run"
        wall = train(run, args.rounds, args.threads)
        config = build_config(None, CONTROL, "MNIST5k", 0, (*SETTINGS, f"rounds={args.rounds}"))
        dataset = load_dataset("MNIST5k", str(ROOT / "data"))
        partition = load_partition(config, dataset, None)
        federation = Federation(config, dataset, partition, torch.device("cpu"))
        blob = read_checkpoint(run / "checkpoint.pt", config)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            guard_and_checks(run, config, blob, partition, federation)
            times.append(time.perf_counter() - started)
        rounds = len(pd.read_csv(run / "history.csv"))
    finally:
        shutil.rmtree(scratch)
    guard = statistics.median(times)
    print(f"default-grid run ({CONTROL}, {rounds} rounds, {args.threads} thread): {wall:.2f} s wall")
    print(f"guard and checks of train + evaluate: median {guard * 1000:.2f} ms over {args.repeats} repeats")
    print(f"overhead: {guard / wall:.4%} of the run")
    if args.csv:
        row = {"rounds": rounds, "threads": args.threads, "repeats": args.repeats, "run_s": wall}
        row.update(guard_ms=guard * 1000, overhead_pct=100 * guard / wall, measured=str(datetime.date.today()))
        pd.DataFrame([row]).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()

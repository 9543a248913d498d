"""Every run says which code, versions and hardware made it; a retrained run is compared with its original."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from heterofl import provenance
from heterofl.cli import main
from heterofl.config import Control, ExperimentConfig
from heterofl.evaluate_run import evaluate_run
from heterofl.io import write_csv
from heterofl.report.collect import collect_runs
from heterofl.reproduce import compare_runs
from heterofl.runner import train_run

REPO = Path(__file__).resolve().parents[1]


def _tiny(tmp_path) -> Path:
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "model": "conv",
            "control": Control.parse("1_5_0.4_iid_fix_e1_bn_1_1"),
            "seed": 0,
            "rounds": 2,
            "eval_every": 1,
        }
    )
    out = tmp_path / "run"
    train_run(config, out, device="cpu")
    evaluate_run(out, device="cpu")
    return out


def test_train_and_evaluate_record_code_versions_and_hardware_and_the_summary_carries_them(tmp_path):
    torch.set_num_threads(1)
    out = _tiny(tmp_path)
    records = provenance.read(out)
    assert [r["step"] for r in records] == ["train", "evaluate"]
    train = records[0]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if commit.returncode == 0:  # a git checkout (CI clones one)
        assert train["code_commit"] == commit.stdout.strip() and isinstance(train["code_dirty"], bool)
    assert train["torch"] == str(torch.__version__) and train["numpy"] == np.__version__
    assert train["python"] == platform.python_version()
    assert train["threads"] == 1 and train["device"] == "cpu" and train["rounds"] == "1-2"
    assert train["hardware"] and train["engine"]
    runs, _ = collect_runs(folders=[out])
    row = runs.iloc[0]
    assert row["torch"] == str(torch.__version__) and row["threads"] == 1 and row["train_sessions"] == 1
    assert row["code_commit"] == (train["code_commit"] or "")[:12] or pd.isna(row["code_commit"])

    # The same run retrained on the same machine, threads and versions is bitwise identical.
    assert main(["reproduce", "--run", str(out), "--out", str(tmp_path / "again"), "--threads", "1"]) == 0
    table = pd.read_csv(tmp_path / "again" / "comparison.csv")
    assert bool(table.loc[0, "bitwise"]) and table.loc[0, "max_accuracy_diff"] == 0


def _copy_with(folder: Path, target: Path, shift: float) -> Path:
    target.mkdir()
    for name in ("config.yaml", "history.csv"):
        (target / name).write_bytes((folder / name).read_bytes())
    frame = pd.read_csv(folder / "eval.csv")
    accuracy = frame["metric"].str.endswith("Accuracy")
    frame.loc[accuracy, "final"] += shift
    write_csv(target / "eval.csv", frame)
    return target


def test_comparison_reports_the_largest_accuracy_difference_against_the_tolerance(tmp_path):
    original = tmp_path / "orig"
    original.mkdir()
    pd.DataFrame({"round": [1, 2], "seconds_train": [1.0, 9.0], "e_Global-Accuracy": [50.0, 60.0]}).to_csv(
        original / "history.csv", index=False
    )
    (original / "config.yaml").write_text("dataset: MNIST5k\n")
    pd.DataFrame(
        {
            "letter": ["e", "e"],
            "metric": ["Global-Loss", "Global-Accuracy"],
            "final": [0.5, 60.0],
            "best": [0.5, 60.0],
            "mean_last_k": [0.6, 55.0],
        }
    ).to_csv(original / "eval.csv", index=False)
    same = _copy_with(original, tmp_path / "same", 0.0)
    history = pd.read_csv(same / "history.csv")
    history["seconds_train"] = [2.0, 3.0]  # timings never count
    history.to_csv(same / "history.csv", index=False)
    assert compare_runs(original, same, 1.0).bitwise
    near = compare_runs(original, _copy_with(original, tmp_path / "near", 0.25), 1.0)
    assert not near.bitwise and near.within and abs(near.max_accuracy_diff - 0.25) < 1e-9
    assert near.worst == "eval: e_Global-Accuracy final 60.0000 -> 60.2500" and near.max_loss_diff == 0
    far = compare_runs(original, _copy_with(original, tmp_path / "far", -2.5), 1.0)
    assert not far.within and far.max_accuracy_diff == 2.5

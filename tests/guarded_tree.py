"""A scratch tree of results to refuse writes into, and the byte-for-byte snapshot the guard tests compare.

``results/committed`` is a read-only tree (the ``.read-only`` marker) with a finished run, a summary, tables
and a partition; ``results/runs`` holds finished runs of two configurations and folders with odd content;
``outside/`` holds a file that symlinks in ``results/`` point to.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml

from heterofl.cli import build_config, main

CONTROL = "1_4_0.5_iid_fix_e1_bn_1_1"
OTHER_CONTROL = "1_4_0.5_iid_fix_a1_bn_1_1"
SETTINGS = ("rounds=1", "local_epochs=1", "eval_rates=global")
HISTORY = "round,lr,train_loss,e_Global-Accuracy\n1,0.01,2.0,50.0\n"
EVAL = "letter,rate,metric,final,best,mean_last_k,evaluations\ne,0.0625,Global-Accuracy,50.0,50.0,50.0,1\n"
SUMMARY_RUNS = (
    "dataset,model,run,control,method,seed,fed,num_users,frac,data_split_mode,model_split_mode,model_mode,norm,"
    "scale,mask,global_letter,resnet_blocks,letter,rate,metric,final,best,mean_last_k\n"
    f"MNIST5k,conv,{CONTROL},{CONTROL},heterofl,0,1,4,0.5,iid,fix,e1,bn,1,1,e,1-1-1-2,e,0.0625,"
    "Global-Accuracy,80.0,81.0,80.0\n"
)
SUMMARY_HISTORY = (
    "dataset,model,run,control,method,seed,round,letter,metric,value\n"
    f"MNIST5k,conv,{CONTROL},{CONTROL},heterofl,0,1,e,Global-Accuracy,71.0\n"
    f"MNIST5k,conv,{CONTROL},{CONTROL},heterofl,0,2,e,Global-Accuracy,72.0\n"
)


def config(control: str = CONTROL, settings: tuple[str, ...] = SETTINGS):
    return build_config(None, control, "MNIST5k", None, settings)


def train_argv(out: str, *extra: str, control: str = CONTROL) -> list[str]:
    argv = ["train", "--dataset", "MNIST5k", "--control", control, "--threads", "1", "--quiet", "--out", out]
    for pair in SETTINGS:
        argv += ["--set", pair]
    return [*argv, *extra]


def partition_argv(out: str, *extra: str) -> list[str]:
    return ["partition", "--dataset", "MNIST5k", "--split", "iid", "--num-users", "4", "--out", out, *extra]


def run_folder(folder: Path, control: str = CONTROL, files: tuple[str, ...] = ("config", "history", "eval", "model")):
    folder.mkdir(parents=True)
    if "config" in files:
        (folder / "config.yaml").write_text(yaml.safe_dump(config(control).to_dict(), sort_keys=False))
    if "history" in files:
        (folder / "history.csv").write_text(HISTORY)
    if "eval" in files:
        (folder / "eval.csv").write_text(EVAL)
    if "model" in files:
        torch.save({"params": {"w": torch.zeros(3)}, "config": config(control).to_dict()}, folder / "model.pt")


def make_tree(root: Path) -> None:
    committed = root / "results" / "committed"
    committed.mkdir(parents=True)
    (committed / ".read-only").write_text("committed results: never written to\n")
    run_folder(committed / "runs" / "run1")
    (committed / "summary").mkdir()
    (committed / "summary" / "runs.csv").write_text(SUMMARY_RUNS)
    (committed / "summary" / "history.csv").write_text(SUMMARY_HISTORY)
    (committed / "tables").mkdir()
    (committed / "tables" / "index.md").write_text("# tables\n")
    (committed / "partitions").mkdir()
    (committed / "partitions" / "p.json").write_text("{}\n")
    (committed / "partitions" / "stats.csv").write_text("user,label,count\n0,0,1\n")
    runs = root / "results" / "runs"
    run_folder(runs / "run1")
    run_folder(runs / "other", control=OTHER_CONTROL)
    run_folder(runs / "config_only", control=OTHER_CONTROL, files=("config",))
    run_folder(runs / "orphan", files=("history", "model"))
    run_folder(runs / "bad_config", files=("history", "model"))
    (runs / "bad_config" / "config.yaml").write_text("rounds: [1\n")
    run_folder(runs / "linked")
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text("not a result\n")
    (runs / "linked" / "train.log").symlink_to(root / "outside" / "secret.txt")
    (root / "results" / "log_link").symlink_to(root / "outside" / "secret.txt")
    (root / "results" / "to_committed").symlink_to(committed, target_is_directory=True)
    (root / "results" / "summary").mkdir()
    (root / "results" / "summary" / "runs.csv").write_text(SUMMARY_RUNS)
    (root / "results" / "summary" / "history.csv").write_text(SUMMARY_HISTORY)


def scratch_tree(tmp_path: Path, monkeypatch) -> Path:
    """:func:`make_tree` in ``tmp_path``, made the working folder (the body of the test modules' ``tree`` fixture)."""
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, object]:
    """Every folder (None), symlink (its target) and file (its bytes) under ``root``, links not followed."""
    out: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                out[key] = ("link", os.readlink(path))
            elif path.is_dir():
                out[key] = None
            else:
                out[key] = path.read_bytes()
    return out


def refused(argv: list[str], capsys) -> str:
    """Run the CLI in process; return its one stderr line after checking exit code 2 and a single error line."""
    capsys.readouterr()
    code = main(argv)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def refused_unchanged(argv: list[str], needles: list[str], watched: Path, capsys) -> str:
    """:func:`refused`, every needle in its error line, and nothing under ``watched`` changed; the line."""
    before = snapshot(watched)
    line = refused(argv, capsys)
    for needle in needles:
        assert needle in line, (needle, line)
    assert snapshot(watched) == before, "a refused command changed the tree"
    return line

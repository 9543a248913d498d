"""Bad-input battery, part two: inputs that are well formed but wrong in content, refused before any work.

Partition files whose indices or label sets do not fit the data, data files of the wrong shape or without
words, wrongly typed or out-of-range options, output paths that cannot be written, cached CSVs with NaN or
missing columns, repeated ``--set`` keys, settings that contradict each other, and a full disk. Every case
runs the CLI (in process through ``heterofl.cli.main``; the ``sub`` cases as a real subprocess, which proves no
traceback reaches stderr) from a scratch folder holding a ``results/`` tree, and checks: exit code 2, exactly
one non-empty stderr line starting with ``error:`` that names the field or file, and ``results/`` unchanged
(every folder and every file's bytes, so a refused ``train`` leaves no new, empty run folder either).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_bad_inputs import run_cli  # the same one-line-error harness as the first battery

from heterofl.cli import build_config
from heterofl.data import load_dataset, make_partition, write_partition
from heterofl.data.partition import _CONTENT_KEYS, _hash
from heterofl.errors import HeteroFLError, os_error_line
from heterofl.grid import expand_runs
from heterofl.report.collect import HISTORY_COLUMNS

CONTROL = "1_4_0.5_iid_fix_e1_bn_1_1"
SETTINGS = ("rounds=1", "local_epochs=1", "eval_rates=global")
NEW = "results/runs/new"  # a run folder that does not exist yet: a refused train must not create it
RUN = "results/runs/run1"  # a finished-looking run (valid model.pt, history.csv, eval.csv)
P = "{assets}/"
BIG = str(2**70)


def train(*extra: str, out: str = NEW, settings: tuple[str, ...] = SETTINGS) -> list[str]:
    argv = ["train", "--dataset", "MNIST5k", "--control", CONTROL, "--threads", "1", "--quiet", "--out", out]
    for pair in settings:
        argv += ["--set", pair]
    return [*argv, *extra]


def requested_config():
    return build_config(None, CONTROL, "MNIST5k", None, SETTINGS)


# ---------------------------------------------------------------------------------------------- assets


def _rehash(raw: dict) -> dict:
    """Keep the content hash valid, so only the new content checks can catch the edit."""
    raw["content_hash"] = _hash({k: raw[k] for k in _CONTENT_KEYS})
    return raw


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def _edited(raw: dict, key: str, user: int, row: list[int]) -> dict:
    rows = [list(r) for r in raw[key]]
    rows[user] = row
    return _rehash(dict(raw, **{key: rows}))


def summary_runs() -> pd.DataFrame:
    """A valid summary runs.csv: one run, letter e, global and local accuracy."""
    row = {
        "dataset": "MNIST5k",
        "model": "conv",
        "run": CONTROL,
        "control": CONTROL,
        "method": "heterofl",
        "seed": 0,
        "fed": 1,
        "num_users": 4,
        "frac": 0.5,
        "data_split_mode": "iid",
        "model_split_mode": "fix",
        "model_mode": "e1",
        "norm": "bn",
        "scale": 1,
        "mask": 1,
        "global_letter": "e",
        "resnet_blocks": "1-1-1-2",
        "letter": "e",
        "rate": 0.0625,
    }
    rows = [dict(row, metric=m, final=v, best=v + 1, mean_last_k=v) for m, v in (("Global-Accuracy", 80.0),)]
    rows.append(dict(row, metric="Local-Accuracy", final=90.0, best=91.0, mean_last_k=90.0))
    return pd.DataFrame(rows)


def summary_history() -> pd.DataFrame:
    keys = {"dataset": "MNIST5k", "model": "conv", "run": CONTROL, "control": CONTROL, "method": "heterofl"}
    rows = [
        {**keys, "seed": 0, "round": r, "letter": "e", "metric": "Global-Accuracy", "value": 70.0 + r} for r in (1, 2)
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """Partition files, data roots and CSVs shared by all cases (outside results/, never written to)."""
    root = tmp_path_factory.mktemp("assets")
    data = load_dataset("MNIST5k")
    write_partition(make_partition(data, "iid", 4, 0), root / "good.json")
    raw = json.loads((root / "good.json").read_text())
    n_train, n_test = data.train_x.shape[0], data.test_x.shape[0]
    train0, train1 = raw["train_indices"][0], raw["train_indices"][1]
    partitions = {
        "out_of_range": _edited(raw, "train_indices", 1, [n_train, *train1[1:]]),
        "negative": _edited(raw, "train_indices", 2, [-1, *raw["train_indices"][2][1:]]),
        "repeated": _edited(raw, "train_indices", 0, [train0[0], train0[0], *train0[2:]]),
        "shared": _edited(raw, "train_indices", 1, [train0[0], *train1[1:]]),
        "test_out_of_range": _edited(raw, "test_indices", 3, [*raw["test_indices"][3][:-1], n_test + 5]),
        "label_set": _edited(raw, "label_sets", 2, [v for v in raw["label_sets"][2] if v != 3]),
        "fewer_lists": _rehash(dict(raw, train_indices=raw["train_indices"][:3])),
    }
    for name, content in partitions.items():
        (root / f"{name}.json").write_text(json.dumps(content))
    (root / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 not json at all")
    # data roots: MNIST with 32x32 images, WikiText2 of <unk> only, a test file sharing no word with train
    mnist = root / "mnist32" / "MNIST" / "raw"
    mnist.mkdir(parents=True)
    for prefix, n in (("train", 30), ("t10k", 10)):
        (mnist / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(2051, (n, 32, 32), bytes(n * 1024)))
        (mnist / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(2049, (n,), bytes(range(10)) * (n // 10)))
    words = " ".join(f"w{i}" for i in range(50))
    for name, files in {
        "wiki_unk": {"train": "<unk> <unk> <unk>\n" * 300, "valid": words + "\n", "test": words + "\n"},
        "wiki_oov": {"train": (words + "\n") * 300, "valid": words + "\n", "test": "x y z\n" * 40},
    }.items():
        folder = root / name / "WikiText2" / "raw"
        folder.mkdir(parents=True)
        for split, body in files.items():
            (folder / f"wiki.{split}.tokens").write_text(body)
    # a CIFAR10 root whose second train batch is an empty file
    cifar = root / "cifar_empty" / "CIFAR10" / "raw" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {b"data": np.zeros((10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (cifar / name).write_bytes(b"" if name == "data_batch_2" else pickle.dumps(batch))
    # summary CSVs
    runs, history = summary_runs(), summary_history()
    runs.to_csv(root / "runs.csv", index=False)
    history.to_csv(root / "history.csv", index=False)
    runs.assign(final=[80.0, np.nan]).to_csv(root / "runs_nan.csv", index=False)
    runs.to_csv(root / "runs_empty_cell.csv", index=False)
    text = (root / "runs_empty_cell.csv").read_text().splitlines()
    text[1] = text[1][: text[1].rindex(",")] + ","  # the last cell (mean_last_k) of the first row left empty
    (root / "runs_empty_cell.csv").write_text("\n".join(text) + "\n")
    runs.drop(columns=["final"]).to_csv(root / "runs_no_final.csv", index=False)
    history.assign(value=[71.0, np.nan]).to_csv(root / "history_nan.csv", index=False)
    (root / "empty.csv").write_text("")
    return root


def _run_folder(folder: Path, history: str, evaluation: str | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(requested_config().to_dict(), sort_keys=False))
    torch.save({"params": {"w": torch.zeros(3)}, "config": {}}, folder / "model.pt")
    (folder / "history.csv").write_text(history)
    if evaluation is not None:
        (folder / "eval.csv").write_text(evaluation)


GOOD_HISTORY = "round,lr,train_loss,e_Global-Accuracy\n1,0.01,2.0,50.0\n"
GOOD_EVAL = "letter,rate,metric,final,best,mean_last_k,evaluations\ne,0.0625,Global-Accuracy,50.0,50.0,50.0,1\n"


def make_results(root: Path) -> None:
    """A results tree: finished runs (some with a bad CSV), a summary, tables, and a read-only folder."""
    runs = root / "results" / "runs"
    _run_folder(runs / "run1", GOOD_HISTORY, GOOD_EVAL)
    _run_folder(runs / "empty_history", "")
    _run_folder(runs / "header_history", "round,lr,train_loss,e_Global-Accuracy\n")
    _run_folder(runs / "eval_nan", GOOD_HISTORY, GOOD_EVAL.replace("50.0,50.0,50.0", "50.0,nan,50.0"))
    _run_folder(runs / "eval_no_best", GOOD_HISTORY, GOOD_EVAL.replace(",best", ",bets"))
    _run_folder(runs / "history_empty_done", "", GOOD_EVAL)
    grid = root / "results" / "grid" / "MNIST5k" / "conv" / CONTROL / "seed0"
    _run_folder(grid, GOOD_HISTORY, GOOD_EVAL.replace(",50.0,1\n", ",,1\n"))
    summary = root / "results" / "summary"
    summary.mkdir(parents=True)
    summary_runs().to_csv(summary / "runs.csv", index=False)
    summary_history().to_csv(summary / "history.csv", index=False)
    (root / "results" / "tables").mkdir()
    (root / "results" / "tables" / "index.md").write_text("# old tables\n")
    (root / "results" / "figures").mkdir()
    (root / "results" / "locked").mkdir()


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every folder (None) and file (its bytes) under results/."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted((root / "results").rglob("*"))
    }


# ---------------------------------------------------------------------------------------------- cases

PART = ["partition", "--dataset", "MNIST5k", "--split", "iid", "--num-users", "4", "--out", "results/p.json"]
TABLES = ["tables", "--out", "results/tables", "--runs-csv"]


def figures(runs_csv: str, history_csv: str) -> list[str]:
    return ["figures", "--runs-csv", runs_csv, "--history-csv", history_csv, "--out", "results/figures"]


# (id, argv, substrings the error line must hold, as a subprocess)
CASES = [
    # 1. partition files: content that the hash cannot vouch for, refused naming the file and the client
    (
        "part-index-out-of-range",
        train("--partition", P + "out_of_range.json"),
        ["out_of_range.json", "client 1", "outside 0..3999"],
        True,
    ),
    (
        "part-negative-index",
        train("--partition", P + "negative.json"),
        ["negative.json", "client 2", "index -1"],
        False,
    ),
    (
        "part-repeated-index",
        train("--partition", P + "repeated.json"),
        ["repeated.json", "client 0", "repeats index"],
        False,
    ),
    ("part-shared-index", train("--partition", P + "shared.json"), ["shared.json", "client 1", "with client 0"], False),
    (
        "part-test-index-out-of-range",
        train("--partition", P + "test_out_of_range.json"),
        ["test_out_of_range.json", "client 3", "test_indices"],
        False,
    ),
    ("part-label-set", train("--partition", P + "label_set.json"), ["label_set.json", "client 2", "label set"], False),
    ("part-fewer-client-lists", train("--partition", P + "fewer_lists.json"), ["fewer_lists.json", "4 clients"], False),
    ("part-not-json", train("--partition", P + "binary.json"), ["binary.json", "cannot be read"], False),
    # 2. data files
    (
        "data-mnist-32x32",
        train("--dataset", "MNIST", "--set", "data_root=" + P + "mnist32"),
        ["data file", "train-images-idx3-ubyte", "32x32"],
        True,
    ),
    (
        "data-wikitext-only-unk",
        train("--dataset", "WikiText2", "--set", "data_root=" + P + "wiki_unk"),
        ["data file", "wiki.train.tokens", "<unk>"],
        False,
    ),
    (
        "data-wikitext-test-unknown-words",
        train("--dataset", "WikiText2", "--set", "data_root=" + P + "wiki_oov"),
        ["data file", "wiki.test.tokens", "vocabulary"],
        False,
    ),
    (
        "data-cifar-empty-batch",
        train("--dataset", "CIFAR10", "--set", "data_root=" + P + "cifar_empty"),
        ["data file", "data_batch_2"],
        False,
    ),
    # 3. CLI arguments
    ("set-data-root-int", train("--set", "data_root=5"), ["data_root", "5"], False),
    ("set-data-root-list", train("--set", "data_root=[a, b]"), ["data_root"], False),
    ("out-under-file", train(out="results/runs/run1/history.csv/new"), ["--out", "history.csv"], True),
    ("out-is-a-file", train(out="results/runs/run1/eval.csv"), ["--out", "eval.csv", "is a file"], False),
    ("device-mps", train("--device", "mps"), ["device", "'mps'", "cuda:N"], False),
    ("device-cuda-x", train("--device", "cuda:x"), ["device", "'cuda:x'"], False),
    ("seed-beyond-64-bits", train("--seed", BIG), ["seed", BIG, "64-bit"], False),
    ("batch-size-beyond-64-bits", train("--set", "batch_size_train=" + BIG), ["batch_size_train", "64 bits"], False),
    ("seed-negative-set", train("--set", "seed=-3"), ["seed", "-3"], False),
    ("partition-seed-beyond-64-bits", [*PART, "--seed", BIG], ["seed", BIG], False),
    (
        "evaluate-empty-history",
        ["evaluate", "--run", "results/runs/empty_history"],
        ["history", "empty_history/history.csv", "empty"],
        False,
    ),
    (
        "evaluate-header-only-history",
        ["evaluate", "--run", "results/runs/header_history"],
        ["history", "header_history/history.csv", "no rows"],
        False,
    ),
    (
        "tables-history-as-runs",
        [*TABLES, "results/summary/history.csv"],
        ["summary/history.csv", "lacks the columns"],
        True,
    ),
    ("tables-missing-column", [*TABLES, P + "runs_no_final.csv"], ["runs_no_final.csv", "final"], False),
    ("tables-empty-file", [*TABLES, P + "empty.csv"], ["empty.csv", "is empty"], False),
    ("figures-runs-as-history", figures(P + "runs.csv", P + "runs.csv"), ["runs.csv", "round", "value"], False),
    ("summarize-blocks-two", ["summarize", "--resnet-blocks", "1,1"], ["--resnet-blocks", "'1,1'"], False),
    ("summarize-blocks-zero", ["summarize", "--resnet-blocks", "0,0,0,0"], ["--resnet-blocks", "'0,0,0,0'"], False),
    ("summarize-blocks-letters", ["summarize", "--resnet-blocks", "a,b,c,d"], ["--resnet-blocks", "'a,b,c,d'"], False),
    # 4. cached CSVs with NaN, empty or missing values
    ("tables-runs-nan", [*TABLES, P + "runs_nan.csv"], ["runs_nan.csv", "line 3, column final", "NaN"], False),
    (
        "tables-runs-empty-cell",
        [*TABLES, P + "runs_empty_cell.csv"],
        ["runs_empty_cell.csv", "line 2, column mean_last_k"],
        False,
    ),
    (
        "figures-history-nan",
        figures(P + "runs.csv", P + "history_nan.csv"),
        ["history_nan.csv", "line 3, column value"],
        False,
    ),
    (
        "collect-eval-nan",
        ["collect", "--run", "results/runs/eval_nan", "--out", "results/summary"],
        ["eval_nan/eval.csv", "line 2, column best"],
        False,
    ),
    (
        "collect-eval-missing-column",
        ["collect", "--run", "results/runs/eval_no_best", "--out", "results/summary"],
        ["eval_no_best/eval.csv", "best"],
        False,
    ),
    (
        "collect-history-empty",
        ["collect", "--run", "results/runs/history_empty_done", "--out", "results/summary"],
        ["history_empty_done/history.csv", "empty"],
        False,
    ),
    (
        "report-eval-empty-cell",
        ["report", "--runs", "results/grid", "--out", "results/report"],
        ["seed0/eval.csv", "column mean_last_k"],
        False,
    ),
    # 5. repeated --set keys
    ("set-repeated-lr", train("--set", "lr=0.1", "--set", "lr=0.2"), ["lr", "given twice", "lr=0.2"], True),
    ("set-repeated-same-value", train("--set", "seed=1", "--set", "seed=1"), ["seed", "given twice"], False),
    # 6. settings that contradict each other
    (
        "milestones-past-rounds",
        train(settings=("rounds=20", "milestones=[30]")),
        ["milestones", "30 is past rounds 20"],
        False,
    ),
    (
        "eval-every-past-rounds",
        train(settings=("rounds=2", "eval_every=5")),
        ["eval_every", "5 is past rounds 2"],
        False,
    ),
    (
        "last-k-above-evaluations",
        train(settings=("rounds=4", "eval_every=2", "last_k=3")),
        ["last_k", "3", "2 evaluations"],
        False,
    ),
]


def check_refused(code: int, stderr: str, needles: list[str]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_results(tmp_path)
    yield tmp_path
    (tmp_path / "results" / "locked").chmod(0o700)


@pytest.mark.parametrize(("argv", "needles", "as_subprocess"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_content_is_one_line_and_changes_nothing(argv, needles, as_subprocess, assets, scratch, capsys):
    before = snapshot(scratch)
    argv = [a.replace("{assets}", str(assets)) for a in argv]
    code, stderr = run_cli(argv, as_subprocess, scratch, capsys)
    check_refused(code, stderr, [n.replace("{assets}", str(assets)) for n in needles])
    assert snapshot(scratch) == before, "a refused input changed files or folders under results/"


# ------------------------------------------------------------------------------- read-only output folders


def test_out_in_read_only_folder(scratch, capsys):
    locked = scratch / "results" / "locked"
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as root: chmod 0500 does not stop root's writes (the simulated case below covers it)")
    before = snapshot(scratch)
    code, stderr = run_cli(train(out="results/locked/run"), False, scratch, capsys)
    check_refused(code, stderr, ["--out", "results/locked/run", "not writable"])
    assert snapshot(scratch) == before


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (train(out="results/locked/run"), ["--out", "results/locked/run", "not writable"]),
        (["collect", "--run", RUN, "--out", "results/locked"], ["--out", "results/locked", "not writable"]),
        ([*TABLES, "results/summary/runs.csv", "--log", "results/locked/tables.log"], ["--log", "tables.log"]),
    ],
    ids=["train", "collect", "tables-log"],
)
def test_out_in_folder_that_denies_writes(argv, needles, scratch, monkeypatch, capsys):
    """The folder's permissions deny writing (as os.access reports them; simulated, so root sees it too)."""
    locked = os.path.realpath(scratch / "results" / "locked")
    real_access = os.access

    def access(path, mode, **kwargs):  # readable, but not writable
        return not (mode & os.W_OK and os.path.realpath(path) == locked) and real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    before = snapshot(scratch)
    code, stderr = run_cli(argv, False, scratch, capsys)
    check_refused(code, stderr, needles)
    assert snapshot(scratch) == before


# ------------------------------------------------------------------------ disk full and permission denied


def _failing_write(error: OSError):
    def write_bytes(self, data):  # the temporary file of heterofl.io.atomic_path
        raise error

    return write_bytes


@pytest.mark.parametrize(
    ("argv", "error", "line"),
    [
        (
            ["collect", "--run", RUN, "--out", "results/summary"],
            OSError(errno.ENOSPC, "No space left on device"),
            "error: cannot write results/summary/runs.csv: no space left on device (errno 28)",
        ),
        (
            [*TABLES, "results/summary/runs.csv"],
            PermissionError(errno.EACCES, "Permission denied"),
            "error: cannot write results/tables/",
        ),
        (
            figures("results/summary/runs.csv", "results/summary/history.csv"),
            OSError(errno.EROFS, "Read-only file system"),
            "error: cannot write results/figures/",
        ),
        (
            ["summarize", "--model", "conv", "--out", "results/summary/complexity.csv"],
            OSError(errno.EDQUOT, "Disk quota exceeded"),
            "error: cannot write results/summary/complexity.csv: disk quota exceeded (errno 122)",
        ),
    ],
    ids=["collect-enospc", "tables-eacces", "figures-erofs", "summarize-edquot"],
)
def test_disk_errors_are_one_line_and_leave_no_partial_file(argv, error, line, scratch, monkeypatch, capsys):
    from matplotlib.figure import Figure

    monkeypatch.setattr(pathlib.Path, "write_bytes", _failing_write(error))  # tables, CSVs, YAML, torch files
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: _failing_write(error)(self, b""))
    before = snapshot(scratch)
    code, stderr = run_cli(argv, False, scratch, capsys)
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith(line), lines[0]
    assert snapshot(scratch) == before, "a failed write left a partial or temporary file"


def _failing_open(error: OSError):
    real = pathlib.Path.open

    def open_(self, mode="r", *args, **kwargs):  # torch files stream into the temporary file (heterofl.io.save_torch)
        if "w" in mode:
            raise error
        return real(self, mode, *args, **kwargs)

    return open_


def test_disk_full_during_training_names_the_file(scratch, monkeypatch, capsys):
    """A full disk at the first checkpoint: one line naming checkpoint.pt, exit 2, no temporary file left."""
    monkeypatch.setattr(pathlib.Path, "write_bytes", _failing_write(OSError(errno.ENOSPC, "No space left")))
    monkeypatch.setattr(pathlib.Path, "open", _failing_open(OSError(errno.ENOSPC, "No space left")))
    code, stderr = run_cli(train(out=NEW), False, scratch, capsys)
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0] == f"error: cannot write {NEW}/checkpoint.pt: no space left on device (errno 28)", lines[0]
    assert not list((scratch / NEW).glob(".*.tmp")) and not (scratch / NEW / "checkpoint.pt").exists()


def test_os_error_line_only_for_disk_errors() -> None:
    assert os_error_line(OSError(errno.EIO, "I/O error", "x")) is None  # not the disk's state: a real bug
    assert os_error_line(PermissionError(errno.EACCES, "Permission denied", "in.csv")) == (
        "cannot access in.csv: permission denied (errno 13)"  # not known to be a write
    )


# ------------------------------------------------------------------- the same checks while planning the pipeline


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rounds": 20, "milestones": [30]}, "experiments.x.milestones: 30 is past rounds 20"),
        ({"rounds": 2, "eval_every": 5}, "experiments.x.eval_every: 5 is past rounds 2"),
        ({"rounds": 10, "eval_every": 5, "last_k": 3}, "experiments.x.last_k: 3 is more than the 2 evaluations"),
    ],
)
def test_pipeline_planning_refuses_contradictions(settings, message) -> None:
    config = {
        "seeds": [0],
        "experiments": [
            {"name": "x", "dataset": "MNIST5k", "num_users": 4, "frac": 0.5, "splits": ["iid"], "fix": ["a1"]}
        ],
    }
    config["experiments"][0]["settings"] = settings
    with pytest.raises(HeteroFLError) as error:
        expand_runs(config)
    assert str(error.value).startswith(message), str(error.value)


def test_defaults_are_no_contradiction() -> None:
    """A short run that leaves milestones and last_k at the reference's values is not refused."""
    config = build_config(None, CONTROL, "MNIST5k", None, ("rounds=2",))
    assert config.milestones == (100,) and config.last_k == 5 and config.evaluations == 2

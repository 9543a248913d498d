"""Inputs a run reads are checked against the run, and the partition it trained on is recorded and held to.

One tiny run is trained once (MNIST5k, 4 clients, 2 rounds, on a partition file); each case copies it, breaks
one input in a way its digest or hash does not catch (the digest is recomputed), and checks that the command
exits 2 with one ``error:`` line naming the field and file, leaving every file as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from guarded_tree import CONTROL, config, refused_unchanged

from heterofl import provenance
from heterofl.checkpoint import _digest
from heterofl.cli import main
from heterofl.data import load_dataset, make_partition, write_partition
from heterofl.data.partition import _CONTENT_KEYS, _hash

SETTINGS = ["--set", "rounds=2", "--set", "local_epochs=1", "--set", "eval_rates=global"]


def train_argv(out: str, *extra: str, control: str = CONTROL) -> list[str]:
    base = ["train", "--dataset", "MNIST5k", "--control", control, "--threads", "1", "--quiet", "--out", out]
    return [*base, *SETTINGS, *extra]


def _rehash(raw: dict) -> dict:
    raw["content_hash"] = _hash({k: raw[k] for k in _CONTENT_KEYS})
    return raw


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A finished, evaluated run trained on ``parts/seed0.json``, plus partition files beside it."""
    root = tmp_path_factory.mktemp("base")
    data = load_dataset("MNIST5k")
    parts = root / "parts"
    write_partition(make_partition(data, "iid", 4, 0), parts / "seed0.json")
    write_partition(make_partition(data, "iid", 4, 1), parts / "seed1.json")
    raw = json.loads((parts / "seed0.json").read_text())
    for key in ("train_indices", "test_indices", "label_sets"):  # clients 0 and 1 swapped: valid, but another split
        raw[key][0], raw[key][1] = raw[key][1], raw[key][0]
    (parts / "swapped.json").write_text(json.dumps(_rehash(raw)))
    run = str(root / "run")
    assert main(train_argv(run, "--partition", str(parts / "seed0.json"))) == 0
    assert main(["evaluate", "--run", run, "--partition", str(parts / "seed0.json"), "--threads", "1"]) == 0
    return root


@pytest.fixture
def tree(base, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(base / "parts", tmp_path / "parts")
    shutil.copytree(base / "run", tmp_path / "results" / "runs" / "run1")
    return tmp_path


RUN = "results/runs/run1"


_check = refused_unchanged
"""Refused with every needle in its one error line, and nothing under the tree changed."""


# ------------------------------------------------------------------------------------------ partitions


def test_partition_and_its_hash_are_recorded_outside_the_config(tree):
    recorded = provenance.trained_partition(RUN)
    written = json.loads((tree / "parts" / "seed0.json").read_text())
    assert recorded["content_hash"] == written["content_hash"]
    assert recorded["seed"] == 0 and recorded["path"].endswith("parts/seed0.json")
    stored = yaml.safe_load((tree / RUN / "config.yaml").read_text())
    settings = tuple(s for s in SETTINGS if s != "--set")
    assert "partition" not in stored and stored == config(settings=settings).to_dict()
    blob = torch.load(tree / RUN / "checkpoint.pt", weights_only=True)
    assert blob["partition_hash"] == written["content_hash"]


def test_partition_of_another_seed_is_refused(tree, capsys):
    _check(
        train_argv("results/runs/new", "--partition", "parts/seed1.json"),
        ["partition", "seed 1", "seed is 0"],
        tree,
        capsys,
    )


def test_resume_refuses_another_partition(tree, capsys):
    (tree / RUN / "config.yaml").unlink()  # as if killed before the end: the checkpoint decides
    _check(
        train_argv(RUN, "--partition", "parts/swapped.json"),
        ["partition", "swapped.json", "checkpoint.pt was trained on"],
        tree,
        capsys,
    )


def test_evaluate_refuses_another_partition(tree, capsys):
    _check(
        ["evaluate", "--run", RUN, "--partition", "parts/swapped.json"],
        ["partition", "swapped.json", "trained on"],
        tree,
        capsys,
    )


def test_reproduce_uses_the_recorded_partition(tree, capsys):
    """The recorded file replaced by another split: reproduce refuses rather than retraining on it."""
    recorded = Path(provenance.trained_partition(RUN)["path"])
    shutil.copy(tree / "parts" / "swapped.json", recorded.parent / "seed0.json.swapped")
    original = recorded.read_bytes()
    recorded.write_bytes((tree / "parts" / "swapped.json").read_bytes())
    try:
        _check(
            ["reproduce", "--run", RUN, "--out", "again", "--threads", "1"],
            ["partition", "seed0.json", "run1 was trained on"],
            tree,
            capsys,
        )
    finally:
        recorded.write_bytes(original)
        (recorded.parent / "seed0.json.swapped").unlink()
    assert not (tree / "again" / "run0" / "history.csv").exists()


# ----------------------------------------------------------------------------------------- checkpoints


def _tamper(path: Path, change) -> None:
    blob = torch.load(path, weights_only=True)
    change(blob)
    blob["digest"] = _digest({k: v for k, v in blob.items() if k != "digest"})
    torch.save(blob, path)


def _first(blob) -> str:
    return next(iter(blob["params"]))


def _rename(blob):
    blob["params"]["renamed"] = blob["params"].pop(_first(blob))


def _reshape(blob):
    name = _first(blob)
    blob["params"][name] = blob["params"][name].reshape(-1)


def _drop(blob):
    blob["params"].pop(_first(blob))


def _nan(blob):
    blob["params"][_first(blob)][0] = float("nan")


def _integer(blob):
    name = _first(blob)
    blob["params"][name] = blob["params"][name].to(torch.int64)


def _set(key, value):
    def change(blob):
        blob[key] = value

    return change


def _python_rng(blob):
    blob["rng"]["python"][1] = blob["rng"]["python"][1][:10]


def _torch_rng(blob):
    blob["rng"]["torch"] = torch.zeros(7, dtype=torch.uint8)


CHECKPOINTS = [
    ("renamed-parameter", _rename, ["checkpoint", "lacks", "renamed"]),
    ("reshaped-parameter", _reshape, ["checkpoint", "has shape"]),
    ("missing-parameter", _drop, ["checkpoint", "lacks"]),
    ("nan-parameter", _nan, ["checkpoint", "NaN"]),
    ("integer-parameter", _integer, ["checkpoint", "dtype torch.int64"]),
    ("round-past-end", _set("round", 5), ["checkpoint", "round 5", "0..2"]),
    ("round-negative", _set("round", -1), ["checkpoint", "round -1"]),
    ("round-float", _set("round", 1.5), ["checkpoint", "round 1.5"]),
    ("history-short", lambda b: b.update(history=b["history"][:1]), ["checkpoint", "history holds rounds 1"]),
    ("history-repeated", lambda b: b.update(history=[b["history"][0]] * 2), ["checkpoint", "rounds 1, 1"]),
    ("sampler-junk", _set("sampler_state", torch.zeros(10, dtype=torch.uint8)), ["checkpoint", "client sampler"]),
    ("sampler-not-tensor", _set("sampler_state", "junk"), ["checkpoint", "client sampler"]),
    ("python-rng-short", _python_rng, ["checkpoint", "python random state"]),
    ("torch-rng-short", _torch_rng, ["checkpoint", "torch random state"]),
]


@pytest.mark.parametrize(("change", "needles"), [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_digest_valid_but_wrong_checkpoint_is_refused(change, needles, tree, capsys):
    _tamper(tree / RUN / "checkpoint.pt", change)
    line = _check(train_argv(RUN, "--partition", "parts/seed0.json"), needles, tree, capsys)
    assert "checkpoint.pt" in line


# ------------------------------------------------------------------------------------------- evaluate


def _model(tree: Path, change) -> None:
    path = tree / RUN / "model.pt"
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)


def _history(tree: Path, change) -> None:
    path = tree / RUN / "history.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)


def test_evaluate_refuses_another_models_parameters(tree, capsys):
    def widen(blob):  # the first layer of a wider model (another rate's, or another run's)
        name = _first(blob)
        blob["params"][name] = torch.zeros(blob["params"][name].shape[0] * 4, *blob["params"][name].shape[1:])

    _model(tree, widen)
    _check(
        ["evaluate", "--run", RUN, "--partition", "parts/seed0.json"], ["model", "model.pt", "has shape"], tree, capsys
    )


def test_evaluate_refuses_nan_in_model(tree, capsys):
    _model(tree, _nan)
    _check(["evaluate", "--run", RUN, "--partition", "parts/seed0.json"], ["model", "NaN"], tree, capsys)


def test_evaluate_refuses_config_edited_after_training(tree, capsys):
    path = tree / RUN / "config.yaml"
    path.write_text(path.read_text().replace("lr: 0.01", "lr: 0.02"))
    assert "lr: 0.02" in path.read_text()
    _check(
        ["evaluate", "--run", RUN, "--partition", "parts/seed0.json"],
        ["model", "model.pt", "differs in lr"],
        tree,
        capsys,
    )


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda h: h.iloc[1:], ["history", "line 2 is round 2 where round 1"]),
        (lambda h: pd.concat([h.iloc[:1], h.iloc[:1]]), ["history", "line 3 is round 1 where round 2"]),
        (lambda h: h.assign(round=[1, 3]), ["history", "line 3 is round 3"]),
    ],
    ids=["round-deleted", "round-duplicated", "round-skipped"],
)
def test_evaluate_refuses_history_with_rounds_out_of_order(change, needles, tree, capsys):
    _history(tree, change)
    _check(["evaluate", "--run", RUN, "--partition", "parts/seed0.json"], needles, tree, capsys)


def test_evaluate_on_a_full_disk_names_the_file(tree, monkeypatch, capsys):
    import errno
    import pathlib

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)  # every atomic write goes through it
    line = _check(["evaluate", "--run", RUN, "--partition", "parts/seed0.json", "--threads", "1"], [], tree, capsys)
    assert line == f"error: cannot write {RUN}/eval.csv: no space left on device (errno 28)", line


def test_reproduce_retrains_on_the_recorded_partition(tree, capsys):
    """No --partition given: the retrained run records (and used) the file the original recorded."""
    code = main(["reproduce", "--run", RUN, "--out", "again", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert provenance.trained_partition("again/run0") == provenance.trained_partition(RUN)
    assert "bitwise identical" in capsys.readouterr().out


def test_collect_refuses_a_config_edited_after_training(tree, capsys):
    assert (
        provenance.trained_config_hash(RUN) == config(settings=tuple(s for s in SETTINGS if s != "--set")).config_hash()
    )
    path = tree / RUN / "config.yaml"
    path.write_text(path.read_text().replace("lr: 0.01", "lr: 0.02"))
    _check(
        ["collect", "--run", RUN, "--out", "summary"], ["config", "config.yaml was edited after training"], tree, capsys
    )

"""Bad-input battery: every malformed input exits non-zero with ONE line naming the field, and touches no result.

Each case runs the CLI (in process through ``heterofl.cli.main``, or as a real subprocess for the cases marked
``sub``, which proves no traceback reaches stderr) from a scratch folder holding a fake ``results/`` tree of
finished and half-finished runs. Before and after, every file under ``results/`` is snapshotted (bytes and
mtime): a refused input must leave that tree exactly as it was, with no new file either.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from heterofl.checkpoint import save_checkpoint
from heterofl.cli import build_config, main
from heterofl.data import load_dataset, make_partition, write_partition
from heterofl.data.partition import _CONTENT_KEYS, _hash
from heterofl.federation import RunState

CONTROL = "1_4_0.5_iid_fix_e1_bn_1_1"
SETTINGS = ("rounds=1", "local_epochs=1", "eval_rates=global")
TRAIN = ["train", "--dataset", "MNIST5k", "--control", CONTROL, "--threads", "1", "--quiet"]
for _pair in SETTINGS:
    TRAIN += ["--set", _pair]
RUN = "results/runs/run1"  # an existing, finished-looking run folder
NEW = "results/runs/new"  # no run yet: another dataset may train there (run1 holds an MNIST5k run)


def train(*extra: str, out: str = RUN, control: str | None = None) -> list[str]:
    argv = list(TRAIN)
    if control is not None:
        argv[argv.index("--control") + 1] = control
    return [*argv, "--out", out, *extra]


def config_file(name: str) -> list[str]:
    """Only the YAML file: no --control/--set that would override the bad value in it."""
    return ["train", "--config", "{assets}/" + name, "--out", RUN, "--threads", "1", "--quiet"]


def requested_config():
    return build_config(None, CONTROL, "MNIST5k", None, SETTINGS)


# ---------------------------------------------------------------------------------------------- assets


def _rehash(raw: dict) -> dict:
    raw["content_hash"] = _hash({k: raw[k] for k in _CONTENT_KEYS})
    return raw


def _cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
    return pickle.dumps(batch)


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """Partition files, YAML files and data roots shared by all cases (outside results/, never written to)."""
    root = tmp_path_factory.mktemp("assets")
    data = load_dataset("MNIST5k")
    good = make_partition(data, "iid", 4, 0)
    write_partition(good, root / "good.json")
    write_partition(make_partition(data, "iid", 8, 0), root / "eight.json")
    write_partition(make_partition(data, "dirichlet-0.5", 4, 0), root / "noniid.json")
    text = (root / "good.json").read_text()
    raw = json.loads(text)
    (root / "empty.json").write_text("")
    (root / "truncated.json").write_text(text[: len(text) // 2])
    (root / "list.json").write_text("[1, 2, 3]\n")
    (root / "missing.json").write_text(json.dumps({k: v for k, v in raw.items() if k != "label_sets"}))
    (root / "extra.json").write_text(json.dumps({**raw, "comment": "hand-made"}))
    edited = dict(raw, train_indices=[[0, *raw["train_indices"][0][1:]], *raw["train_indices"][1:]])
    (root / "edited.json").write_text(json.dumps(edited))
    (root / "foreign.json").write_text(json.dumps(_rehash(dict(raw, dataset="CIFAR10"))))
    (root / "strings.json").write_text(json.dumps(_rehash(dict(raw, label_sets=[["a"]] * 4))))
    # YAML configs
    yamls = {
        "empty.yaml": "",
        "truncated.yaml": "dataset: MNIST5k\nmilestones: [1, 2\n",
        "list.yaml": "- rounds\n- 3\n",
        "extra.yaml": f"dataset: MNIST5k\ncontrol: {CONTROL}\nroundz: 3\n",
        "rounds_str.yaml": f"dataset: MNIST5k\ncontrol: {CONTROL}\nrounds: three\n",
        "milestones_str.yaml": f"dataset: MNIST5k\ncontrol: {CONTROL}\nmilestones: [a, b]\n",
        "control_int.yaml": "dataset: MNIST5k\ncontrol: 12345\n",
        "lr_nan.yaml": f"dataset: MNIST5k\ncontrol: {CONTROL}\nlr: .nan\n",
    }
    for name, body in yamls.items():
        (root / name).write_text(body)
    # a CIFAR10 root whose first train batch is truncated (all six files present, so nothing is downloaded)
    cifar = root / "cifar" / "CIFAR10" / "raw" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for i, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        (cifar / name).write_bytes(_cifar_batch(20, i))
    whole = (cifar / "data_batch_1").read_bytes()
    (cifar / "data_batch_1").write_bytes(whole[: len(whole) // 2])
    # an MNIST root whose train image file has the label file's magic number
    mnist = root / "mnist" / "MNIST" / "raw"
    mnist.mkdir(parents=True)
    for prefix, n in (("train", 30), ("t10k", 10)):
        (mnist / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(2051, (n, 28, 28), bytes(n * 784)))
        (mnist / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(2049, (n,), bytes(n)))
    (mnist / "train-images-idx3-ubyte").write_bytes(_idx(2049, (30, 28, 28), bytes(30 * 784)))
    # a WikiText2 root with an empty training file
    wiki = root / "wiki" / "WikiText2" / "raw"
    wiki.mkdir(parents=True)
    for name, body in (("wiki.train.tokens", ""), ("wiki.valid.tokens", "a b\n"), ("wiki.test.tokens", "a b\n")):
        (wiki / name).write_text(body)
    return root


def _checkpoint(folder: Path, config) -> bytes:
    """The bytes of a real checkpoint of ``config`` (one small tensor with a findable bit pattern)."""
    params = {"w": torch.arange(64, dtype=torch.float32) + 0.5}
    state = RunState(1, params, torch.Generator().manual_seed(0).get_state(), [{"round": 1, "train_loss": 1.0}])
    save_checkpoint(folder / "scratch.pt", config, state)
    return (folder / "scratch.pt").read_bytes()


def make_results(root: Path) -> None:
    """A fake results tree: a finished run (with a corrupt model.pt), and folders holding bad checkpoints."""
    run = root / RUN
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(requested_config().to_dict(), sort_keys=False))
    (run / "history.csv").write_text("round,lr,train_loss\n1,0.01,2.0\n")
    (run / "model.pt").write_bytes(b"PK\x03\x04 this is not a torch archive")
    (run / "train.log").write_text("an old log\n")
    (root / "results" / "partitions").mkdir()
    (root / "results" / "partitions" / "p.json").write_text("{}\n")
    (root / "results" / "partitions" / "p.csv").write_text("user\n")
    good = _checkpoint(root, requested_config())
    foreign = _checkpoint(root, requested_config().replace(lr=0.5, seed=3))
    marker = (torch.arange(64, dtype=torch.float32) + 0.5).numpy().tobytes()
    flipped = bytearray(good)
    flipped[good.index(marker) + 41] ^= 0x40  # one bit of one weight: torch.load itself would not notice
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    for name, blob in {
        "foreign": foreign,
        "garbage": os.urandom(4096),
        "truncated": good[: len(good) // 2],
        "flipped": bytes(flipped),
        "notckpt": buffer.getvalue(),
        "empty": b"",
    }.items():
        folder = root / "results" / "runs" / name
        folder.mkdir(parents=True)
        (folder / "checkpoint.pt").write_bytes(blob)
        (folder / "train.log").write_text("an old log\n")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted((root / "results").rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------- cases

P = "{assets}/"
PART = ["partition", "--dataset", "MNIST5k", "--seed", "0", "--out", "results/partitions/p.json"]
CASES = [
    # control strings
    ("control-too-few-fields", train(control="1_4_0.5_iid_fix_e1_bn_1"), "control", True),
    ("control-num-users-word", train(control="1_four_0.5_iid_fix_e1_bn_1_1"), "num_users", False),
    ("control-num-users-zero", train(control="1_0_0.5_iid_fix_e1_bn_1_1"), "num_users", False),
    ("control-frac-above-1", train(control="1_4_1.5_iid_fix_e1_bn_1_1"), "frac", False),
    ("control-fed-2", train(control="2_4_0.5_iid_fix_e1_bn_1_1"), "fed", False),
    ("control-split-unknown", train(control="1_4_0.5_shuffled_fix_e1_bn_1_1"), "data_split_mode", False),
    ("control-non-iid-0", train(control="1_4_0.5_non-iid-0_fix_e1_bn_1_1"), "data_split_mode", False),
    ("control-model-split", train(control="1_4_0.5_iid_wobble_e1_bn_1_1"), "model_split_mode", False),
    ("control-model-mode-letter", train(control="1_4_0.5_iid_fix_z1_bn_1_1"), "model_mode", False),
    ("control-model-mode-order", train(control="1_4_0.5_iid_fix_e1-a1_bn_1_1"), "model_mode", False),
    ("control-norm", train(control="1_4_0.5_iid_fix_e1_batchnorm_1_1"), "norm", False),
    ("control-mask-7", train(control="1_4_0.5_iid_fix_e1_bn_1_7"), "mask", False),
    ("control-fed0-with-split", train(control="0_1_1_iid_fix_e1_bn_1_1"), "data_split_mode", False),
    # YAML configs and --set overrides
    ("yaml-missing-file", config_file("nope.yaml"), "config", False),
    ("yaml-empty", config_file("empty.yaml"), "config", False),
    ("yaml-truncated", config_file("truncated.yaml"), "config", True),
    ("yaml-list", config_file("list.yaml"), "config", False),
    ("yaml-extra-key", config_file("extra.yaml"), "roundz", False),
    ("yaml-rounds-string", config_file("rounds_str.yaml"), "rounds", False),
    ("yaml-milestones-strings", config_file("milestones_str.yaml"), "milestones", False),
    ("yaml-control-int", config_file("control_int.yaml"), "control", False),
    ("yaml-lr-nan", config_file("lr_nan.yaml"), "lr", False),
    ("set-unknown-key", train("--set", "roundz=3"), "roundz", False),
    ("set-no-equals", train("--set", "rounds"), "--set", False),
    ("set-rounds-negative", train("--set", "rounds=-1"), "rounds", False),
    ("set-rounds-float", train("--set", "rounds=2.5"), "rounds", False),
    ("set-lr-zero", train("--set", "lr=0"), "lr", False),
    ("set-lr-inf", train("--set", "lr=.inf"), "lr", False),
    ("set-momentum-2", train("--set", "momentum=2"), "momentum", False),
    ("set-milestones-decreasing", train("--set", "milestones=[5, 3]"), "milestones", False),
    ("set-milestones-scalar", train("--set", "milestones=5"), "milestones", False),
    ("set-resnet-blocks-short", train("--set", "resnet_blocks=[1, 1]"), "resnet_blocks", False),
    ("set-eval-rates", train("--set", "eval_rates=some"), "eval_rates", False),
    ("set-engine", train("--set", "engine=turbo"), "engine", False),
    ("set-model-unknown", train("--set", "model=vgg"), "model", False),
    ("set-model-mismatch", train("--set", "model=transformer"), "model", False),
    ("set-bad-yaml-value", train("--set", "lr=[0.1"), "lr", False),
    ("set-num-users-string", train("--set", "num_users=many"), "num_users", False),
    ("set-checkpoint-every-0", train("--set", "checkpoint_every=0"), "checkpoint_every", False),
    # CLI options
    ("cli-seed-word", train("--seed", "abc"), "--seed", True),
    ("cli-seed-negative", train("--seed", "-1"), "seed", False),
    ("cli-threads-0", train("--threads", "0"), "--threads", False),
    ("cli-dataset-unknown", [*train(), "--dataset", "ImageNet"], "dataset", False),
    ("cli-device-unknown", train("--device", "tpu"), "device", False),
    ("cli-unknown-option", train("--speed", "fast"), "--speed", False),
    ("cli-missing-out", TRAIN, "--out", False),
    ("cli-unknown-command", ["trian", "--out", RUN], "trian", False),
    ("partition-num-users-0", [*PART, "--split", "iid", "--num-users", "0"], "num_users", False),
    ("partition-split-unknown", [*PART, "--split", "pathological", "--num-users", "4"], "data_split_mode", False),
    ("partition-variant", [*PART, "--split", "non-iid-2", "--num-users", "4", "--variant", "x"], "variant", False),
    ("partition-too-many-users", [*PART, "--split", "iid", "--num-users", "999999"], "num_users", False),
    ("partition-k-too-big", [*PART, "--split", "non-iid-11", "--num-users", "10"], "data_split_mode", False),
    ("evaluate-missing-run", ["evaluate", "--run", "results/runs/nope"], "run", False),
    ("evaluate-corrupt-model", ["evaluate", "--run", RUN], "model", True),
    # data files
    (
        "data-cifar-truncated-batch",
        train("--set", "data_root=" + P + "cifar", "--dataset", "CIFAR10", out=NEW),
        "data file",
        True,
    ),
    (
        "data-mnist-bad-magic",
        train("--set", "data_root=" + P + "mnist", "--dataset", "MNIST", out=NEW),
        "data file",
        False,
    ),
    (
        "data-wikitext-empty",
        train("--set", "data_root=" + P + "wiki", "--dataset", "WikiText2", out=NEW),
        "data file",
        False,
    ),
    # partition files
    ("part-missing-file", train("--partition", P + "nope.json"), "partition", False),
    ("part-empty", train("--partition", P + "empty.json"), "partition", False),
    ("part-truncated", train("--partition", P + "truncated.json"), "partition", False),
    ("part-list", train("--partition", P + "list.json"), "partition", False),
    ("part-missing-key", train("--partition", P + "missing.json"), "partition", False),
    ("part-extra-key", train("--partition", P + "extra.json"), "partition", False),
    ("part-edited", train("--partition", P + "edited.json"), "partition", False),
    ("part-other-dataset", train("--partition", P + "foreign.json"), "partition", False),
    ("part-string-labels", train("--partition", P + "strings.json"), "partition", False),
    ("part-wrong-client-count", train("--partition", P + "eight.json"), "partition", False),
    ("part-wrong-scheme", train("--partition", P + "noniid.json"), "partition", False),
    # checkpoints
    ("ckpt-other-config", train(out="results/runs/foreign"), "checkpoint", True),
    ("ckpt-garbage", train(out="results/runs/garbage"), "checkpoint", False),
    ("ckpt-truncated", train(out="results/runs/truncated"), "checkpoint", False),
    ("ckpt-bit-flip", train(out="results/runs/flipped"), "checkpoint", False),
    ("ckpt-not-heterofl", train(out="results/runs/notckpt"), "checkpoint", False),
    ("ckpt-empty", train(out="results/runs/empty"), "checkpoint", False),
]
# (a second --dataset overrides the first one: click keeps the last value of a single-valued option)


def run_cli(argv: list[str], as_subprocess: bool, cwd: Path, capsys) -> tuple[int, str]:
    if as_subprocess:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(
            [sys.executable, "-m", "heterofl", *argv], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
        )
        return done.returncode, done.stderr
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "field", "as_subprocess"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(argv, field, as_subprocess, assets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_results(tmp_path)
    before = snapshot(tmp_path)
    argv = [a.replace("{assets}", str(assets)) for a in argv]
    code, stderr = run_cli(argv, as_subprocess, tmp_path, capsys)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert field in lines[0], lines[0]
    assert snapshot(tmp_path) == before, "a refused input changed files under results/"

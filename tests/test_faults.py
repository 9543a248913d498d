"""Faults that used to end in a traceback, a misleading line or exit 0: each is now one ``error:`` line naming
the field or path, exit 2, and no change to the results tree. Also: every path in a rule's shell command is
quoted, so a results root with spaces or Unicode works (the real run is a slow test)."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from guarded_tree import CONTROL, partition_argv, refused_unchanged, scratch_tree, train_argv

from heterofl.data import load_dataset, make_partition, write_partition
from heterofl.data.partition import _CONTENT_KEYS, _hash
from heterofl.lock import LOCK_NAME, run_lock
from heterofl.results_roots import check_roots

REPO = Path(__file__).resolve().parents[1]
LONG = "x" * 300


@pytest.fixture
def tree(tmp_path, monkeypatch):
    return scratch_tree(tmp_path, monkeypatch)


def _check(argv, needles, tree, capsys) -> str:
    """Refused in one line with every needle, and ``results/`` unchanged (the tree's only watched part)."""
    return refused_unchanged(argv, needles, tree / "results", capsys)


CASES = [
    ("train-out-300-chars", train_argv(f"results/{LONG}"), ["--out", "300 bytes", "longer than the"]),
    ("train-log-300-chars", train_argv("results/new", "--log", f"{LONG}/t.log"), ["--log", "300 bytes"]),
    ("collect-out-300-chars", ["collect", "--run", "results/runs/run1", "--out", LONG], ["--out", "300 bytes"]),
    ("partition-out-300-chars", partition_argv(f"{LONG}.json"), ["--out", "305 bytes"]),
    (
        "control-arabic-digit",
        train_argv("results/new", control=CONTROL.replace("_4_", "_\u0664_")),
        ["control", "ASCII"],
    ),
    ("control-fullwidth-digit", train_argv("results/new", control=CONTROL.replace("_4_", "_\uff14_")), ["control"]),
    ("control-trailing-newline", train_argv("results/new", control=CONTROL + "\n"), ["control", "whitespace"]),
    ("control-inner-space", train_argv("results/new", control=CONTROL.replace("_4_", "_ 4_")), ["control"]),
    ("control-nbsp", train_argv("results/new", control=CONTROL + "\u00a0"), ["control"]),
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault_is_one_line(argv, needles, tree, capsys):
    _check(argv, needles, tree, capsys)


def test_utf16_config_is_refused(tree, capsys):
    (tree / "u16.yaml").write_bytes(f"dataset: MNIST5k\ncontrol: {CONTROL}\n".encode("utf-16"))
    _check(["train", "--config", "u16.yaml", "--out", "results/new"], ["config", "u16.yaml", "not UTF-8"], tree, capsys)


@pytest.mark.parametrize("key", ["rounds", "control"])
def test_repeated_key_in_config_is_refused(key, tree, capsys):
    body = f"dataset: MNIST5k\ncontrol: {CONTROL}\nrounds: 1\n" + (
        "rounds: 2\n" if key == "rounds" else f"control: {CONTROL}\n"
    )
    (tree / "twice.yaml").write_text(body)
    line = _check(["train", "--config", "twice.yaml", "--out", "results/new"], [key, "twice.yaml"], tree, capsys)
    assert re.search(r"lines \d and 4", line), line


def test_partition_index_beyond_64_bits_is_refused(tree, capsys):
    path = tree / "p.json"
    write_partition(make_partition(load_dataset("MNIST5k"), "iid", 4, 0), path)
    raw = json.loads(path.read_text())
    raw["train_indices"][2][0] = 2**70
    raw["content_hash"] = _hash({k: raw[k] for k in _CONTENT_KEYS})
    path.write_text(json.dumps(raw))
    _check(train_argv("results/new", "--partition", "p.json"), ["partition", "client 2", str(2**70)], tree, capsys)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_log_on_a_full_device_stops_with_path_and_errno(tree, capsys):
    _check(partition_argv("p.json", "--log", "/dev/full"), ["cannot write /dev/full", "(errno 28)"], tree, capsys)


def test_figures_on_a_full_disk_name_the_file(tree, monkeypatch, capsys):
    from matplotlib.figure import Figure

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    argv = ["figures", "--runs-csv", "results/summary/runs.csv", "--history-csv", "results/summary/history.csv"]
    line = _check([*argv, "--out", "results/figures_new"], ["cannot write results/figures_new/"], tree, capsys)
    assert line.endswith("no space left on device (errno 28)"), line
    assert not [p for p in (tree / "results" / "figures_new").rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "content",
    ['{"pid": "abc", "host": "HOST"}', "garbage[", "[1, 2]", "null", '{"pid": 1e400, "host": "HOST"}', '"str"'],
    ids=["pid-word", "not-json", "list", "null", "pid-infinite", "string"],
)
def test_a_lock_file_of_garbage_is_stale(content, tmp_path, caplog):
    import socket

    (tmp_path / LOCK_NAME).write_text(content.replace("HOST", socket.gethostname()))
    with caplog.at_level(logging.WARNING, logger="heterofl.lock"), run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize(
    ("results", "needle"),
    [("README.md", "is a file"), ("/", "filesystem root"), (str(Path.home()), "home")],
    ids=["file", "root", "home"],
)
def test_results_root_at_a_file_or_the_filesystem_root_is_refused(results, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("not a folder\n")
    problems = check_roots(results, None)
    assert len(problems) == 1 and problems[0].startswith("results: ") and needle in problems[0], problems


# ------------------------------------------------------------------------------------- quoted rule paths

_PATH_FIELD = re.compile(r"\{(input|output|log|params\.data_root)(\.[a-z_]+)?(:q)?\}")


def test_every_path_in_a_rule_shell_command_is_quoted():
    """Paths in shell commands are ``{...:q}`` (Snakemake quotes them); arguments built in Python quote their
    paths with shlex themselves. An unquoted one breaks on a results root with spaces."""
    unquoted = []
    for rules in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = rules.read_text()
        for shell in re.findall(r"shell:\n((?:\s+(?:\"|').*\n)+)", text):
            unquoted += [f"{rules.name}: {m.group(0)}" for m in _PATH_FIELD.finditer(shell) if not m.group(3)]
    assert not unquoted, unquoted
    assert "{R}/" not in (REPO / "workflow" / "Snakefile").read_text()  # onerror's command quotes with shlex
    assert "{output.history:q}" in (REPO / "workflow" / "rules" / "train.smk").read_text()  # the pattern matched


@pytest.mark.slow
def test_a_results_root_with_spaces_and_unicode_runs(tmp_path):
    """Partition, train and evaluate one CI run into ``r s/é ü``: every output lands inside the root."""
    import shutil

    work = tmp_path / "wf"
    shutil.copytree(REPO / "workflow", work / "workflow")
    shutil.copytree(REPO / "config", work / "config")
    root = "r s/é ü"
    target = f"{root}/runs/MNIST5k/conv/1_5_0.4_iid_fix_e1_bn_1_1/seed0/eval.csv"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "config/ci.yaml"]
        + ["--config", f"results={root}", "--", target],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (work / target).is_file()
    outside = [
        p
        for p in work.iterdir()
        if p.name not in ("workflow", "config", ".snakemake", "r s") and not p.name.startswith(".")
    ]
    assert not outside, outside

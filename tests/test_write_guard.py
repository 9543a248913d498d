"""The write guard: every writing command refuses, before any work, to write where it did not make results.

Each case runs the CLI in a scratch tree (``guarded_tree``) and checks exit code 2, one ``error:`` line naming
the option and path, and the whole tree (files, folders, symlinks, the file outside ``results/``) unchanged.
"""

from __future__ import annotations

import pytest
from guarded_tree import OTHER_CONTROL, config, make_tree, refused, snapshot, train_argv

from heterofl.errors import HeteroFLError
from heterofl.write_guard import check_file_output, check_folder_output, check_run_folder, read_only_tree

C = "results/committed"
SUMMARY = ["--runs-csv", f"{C}/summary/runs.csv"]
FIGURES = ["figures", *SUMMARY, "--history-csv", f"{C}/summary/history.csv"]

READ_ONLY = [
    ("collect", ["collect", "--run", f"{C}/runs/run1", "--out", f"{C}/summary"], f"{C}/summary"),
    ("aggregate-old-name", ["aggregate", "--run", f"{C}/runs/run1", "--out", f"{C}/summary"], f"{C}/summary"),
    ("tables", ["tables", *SUMMARY, "--out", f"{C}/tables"], f"{C}/tables"),
    ("figures", [*FIGURES, "--out", f"{C}/figures"], f"{C}/figures"),
    ("report", ["report", "--runs", f"{C}/runs", "--out", C], C),
    ("train-same-config", train_argv(f"{C}/runs/run1"), f"{C}/runs/run1"),
    ("train-new-folder", train_argv(f"{C}/runs/new"), f"{C}/runs/new"),
    ("train-through-symlink", train_argv("results/to_committed/runs/new"), "results/to_committed/runs/new"),
    ("train-log", train_argv("results/runs/new", "--log", f"{C}/train.log"), f"{C}/train.log"),
    ("evaluate-default-out", ["evaluate", "--run", f"{C}/runs/run1"], f"{C}/runs/run1/eval.csv"),
    (
        "partition",
        ["partition", "--dataset", "MNIST5k", "--split", "iid", "--num-users", "4", "--out", f"{C}/partitions/p.json"],
        f"{C}/partitions/p.json",
    ),  # fmt: skip
    (
        "partition-stats",
        [
            "partition",
            "--dataset",
            "MNIST5k",
            "--split",
            "iid",
            "--num-users",
            "4",
            "--out",
            "results/p.json",
            "--stats",
            f"{C}/partitions/stats.csv",
        ],
        "stats.csv",
    ),  # fmt: skip
    (
        "fleet",
        [
            "fleet",
            "--devices",
            "devices.yaml",
            "--fleet",
            "f",
            "--num-users",
            "4",
            "--seed",
            "0",
            "--out",
            f"{C}/fleet.json",
        ],
        f"{C}/fleet.json",
    ),  # fmt: skip
    ("heatmap", ["heatmap", "--stats", f"{C}/partitions/stats.csv", "--out", f"{C}/h.png"], f"{C}/h.png"),
    ("summarize", ["summarize", "--model", "conv", "--out", f"{C}/summary/complexity.csv"], "complexity.csv"),
    ("reproduce", ["reproduce", "--run", "results/runs/run1", "--out", f"{C}/again"], f"{C}/again"),
    ("collect-log", ["collect", "--run", "results/runs/run1", "--out", "results/s2", "--log", f"{C}/c.log"], "c.log"),
    ("tables-through-symlink", ["tables", *SUMMARY, "--out", "results/to_committed/tables"], "to_committed/tables"),
]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path)
    return tmp_path


def _check(argv, needles, tree, capsys) -> str:
    before = snapshot(tree)
    line = refused(argv, capsys)
    for needle in needles:
        assert needle in line, (needle, line)
    assert snapshot(tree) == before, "a refused command changed the tree"
    return line


@pytest.mark.parametrize(("argv", "path"), [c[1:] for c in READ_ONLY], ids=[c[0] for c in READ_ONLY])
def test_read_only_tree_is_never_written(argv, path, tree, capsys):
    _check(argv, [path, "read-only results tree", "allowed:"], tree, capsys)


SYMLINKS = [
    ("train-log-symlink-in-run", train_argv("results/runs/linked"), ["--out", "results/runs/linked/train.log"]),
    ("train-log-option", train_argv("results/runs/new", "--log", "results/log_link"), ["--log", "results/log_link"]),
    (
        "collect-log",
        ["collect", "--run", "results/runs/run1", "--out", "results/s2", "--log", "results/log_link"],
        ["--log", "results/log_link"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in SYMLINKS], ids=[c[0] for c in SYMLINKS])
def test_no_write_through_a_symlink(argv, needles, tree, capsys):
    _check(argv, [*needles, "symbolic link"], tree, capsys)


RESULT_FILES = [
    (
        "evaluate-over-history",
        ["evaluate", "--run", "results/runs/run1", "--out", "results/runs/run1/history.csv"],
        ["--out", "results/runs/run1/history.csv", "existing result file"],
    ),  # fmt: skip
    (
        "evaluate-over-summary",
        ["evaluate", "--run", "results/runs/run1", "--out", "results/summary/runs.csv"],
        ["--out", "results/summary/runs.csv", "existing result file"],
    ),  # fmt: skip
    (
        "train-log-into-history",
        train_argv("results/runs/new", "--log", "results/runs/other/history.csv"),
        ["--log", "results/runs/other/history.csv", "existing result file"],
    ),  # fmt: skip
    (
        "train-log-into-other-run",
        train_argv("results/runs/new", "--log", "results/runs/other/train.log"),
        ["--log", "results/runs/other/train.log", "inside the run folder"],
    ),  # fmt: skip
    (
        "partition-over-config",
        [
            "partition",
            "--dataset",
            "MNIST5k",
            "--split",
            "iid",
            "--num-users",
            "4",
            "--out",
            "results/runs/run1/config.yaml",
        ],
        ["--out", "config.yaml"],
    ),  # fmt: skip
    (
        "summarize-over-eval",
        ["summarize", "--model", "conv", "--out", "results/runs/run1/eval.csv"],
        ["--out", "results/runs/run1/eval.csv", "existing result file"],
    ),  # fmt: skip
    (
        "evaluate-log-in-other-run",
        ["evaluate", "--run", "results/runs/run1", "--log", "results/runs/other/e.log"],
        ["--log", "results/runs/other/e.log", "inside the run folder"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in RESULT_FILES], ids=[c[0] for c in RESULT_FILES])
def test_no_output_onto_another_result_file(argv, needles, tree, capsys):
    _check(argv, needles, tree, capsys)


RUN_FOLDERS = [
    (
        "finished-other-config",
        train_argv("results/runs/run1", control=OTHER_CONTROL),
        [
            "--out",
            "results/runs/run1",
            "another configuration",
            f"control: '1_4_0.5_iid_fix_e1_bn_1_1' there, '{OTHER_CONTROL}' requested",
        ],
    ),  # fmt: skip
    (
        "seed-differs",
        [*train_argv("results/runs/run1"), "--seed", "3"],
        ["results/runs/run1", "seed: 0 there, 3 requested"],
    ),
    (
        "config-only-no-checkpoint",
        train_argv("results/runs/config_only"),
        ["results/runs/config_only", "another configuration"],
    ),  # fmt: skip
    ("run-files-without-config", train_argv("results/runs/orphan"), ["results/runs/orphan", "no config.yaml"]),
    ("unreadable-config", train_argv("results/runs/bad_config"), ["results/runs/bad_config", "cannot be read"]),
    ("train-nested-in-run", train_argv("results/runs/run1/nested"), ["results/runs/run1/nested", "inside the run"]),
    (
        "reproduce-into-run",
        ["reproduce", "--run", "results/runs/run1", "--out", "results/runs/run1"],
        ["--out", "results/runs/run1", "is the run folder"],
    ),  # fmt: skip
    (
        "reproduce-nested",
        ["reproduce", "--run", "results/runs/run1", "--out", "results/runs/run1/again"],
        ["--out", "results/runs/run1/again", "inside the run folder"],
    ),  # fmt: skip
    (
        "reproduce-into-other-run",
        ["reproduce", "--run", "results/runs/run1", "--out", "results/runs/other"],
        ["--out", "results/runs/other"],
    ),  # fmt: skip
    (
        "collect-into-run",
        ["collect", "--run", "results/runs/run1", "--out", "results/runs/run1"],
        ["--out", "results/runs/run1", "is the run folder"],
    ),  # fmt: skip
    ("tables-into-run", ["tables", *SUMMARY, "--out", "results/runs/run1/tables"], ["--out", "inside the run"]),
    ("figures-into-run", [*FIGURES, "--out", "results/runs/other"], ["--out", "results/runs/other"]),
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in RUN_FOLDERS], ids=[c[0] for c in RUN_FOLDERS])
def test_run_folders_hold_one_configuration_and_no_nested_outputs(argv, needles, tree, capsys):
    _check(argv, needles, tree, capsys)


# ------------------------------------------------------------------ what the guard lets through


def test_allowed_outputs_pass(tree):
    """The guard does not refuse what the commands legitimately write."""
    check_run_folder("results/runs/run1", config())  # the same configuration: resume or re-finish
    check_run_folder("results/runs/new", config())
    check_file_output("results/runs/run1/eval.csv", "--out", own_run="results/runs/run1", replaces=("eval.csv",))
    check_file_output("results/runs/run1/train.log", "--log", own_run="results/runs/run1", replaces=("train.log",))
    check_file_output("results/summary/extra.csv", "--out")  # a new file beside results
    check_folder_output("results/summary", "--out")  # a summary folder is rewritten by collect
    check_folder_output("results/reproduced", "--out")
    assert read_only_tree("results/runs/run1") is None


def test_a_lone_config_yaml_does_not_make_a_run_folder(tree):
    """A project folder with its own config.yaml (no history, model or checkpoint) may hold outputs."""
    (tree / "project").mkdir()
    (tree / "project" / "config.yaml").write_text("results: results\n")
    check_folder_output("project/summary", "--out")
    check_run_folder("project/runs/new", config())


def test_read_only_tree_found_through_symlink(tree):
    assert read_only_tree("results/to_committed/runs") == (tree / "results" / "committed").resolve()
    with pytest.raises(HeteroFLError, match="resolves to"):
        check_folder_output("results/to_committed/summary", "--out")

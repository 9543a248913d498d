"""The write guard: every writing command refuses, before any work, to write where it did not make results.

Each case runs the CLI in a scratch tree (``guarded_tree``) and checks exit code 2, one ``error:`` line naming
the option and path, and the whole tree (files, folders, symlinks, the file outside ``results/``) unchanged.
"""

from __future__ import annotations

import pytest
from guarded_tree import OTHER_CONTROL, config, partition_argv, refused_unchanged, scratch_tree, train_argv

from heterofl.errors import HeteroFLError
from heterofl.write_guard import check_file_output, check_folder_output, check_run_folder, read_only_tree

C = "results/committed"
RUN1, NEW, OTHER = "results/runs/run1", "results/runs/new", "results/runs/other"
SUMMARY = ["--runs-csv", f"{C}/summary/runs.csv"]
FIGURES = ["figures", *SUMMARY, "--history-csv", f"{C}/summary/history.csv"]
COLLECT = ["collect", "--run", RUN1]
EVALUATE = ["evaluate", "--run", RUN1]
REPRODUCE = ["reproduce", "--run", RUN1]
SUMMARIZE = ["summarize", "--model", "conv"]
FLEET = ["fleet", "--devices", "devices.yaml", "--fleet", "f", "--num-users", "4", "--seed", "0"]
EXISTING = "existing result file"


def case(name: str, argv: list[str], *needles: str):
    """One refused command: its argv and what its error line must say."""
    return pytest.param(argv, list(needles), id=name)


def onto(name: str, argv: list[str], option: str, path: str, *needles: str):
    """``argv`` with ``option path`` added: the error line names the option, the path and ``needles``."""
    return case(name, [*argv, option, path], option, path, *needles)


def train_into(name: str, folder: str, *needles: str):
    """``heterofl train --out folder``: the error line names the folder and ``needles``."""
    return case(name, train_argv(folder), folder, *needles)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    return scratch_tree(tmp_path, monkeypatch)


READ_ONLY = [  # the needle: the path named (the test adds what every read-only refusal says)
    case("collect", ["collect", "--run", f"{C}/runs/run1", "--out", f"{C}/summary"], f"{C}/summary"),
    case("aggregate-old-name", ["aggregate", "--run", f"{C}/runs/run1", "--out", f"{C}/summary"], f"{C}/summary"),
    case("tables", ["tables", *SUMMARY, "--out", f"{C}/tables"], f"{C}/tables"),
    case("figures", [*FIGURES, "--out", f"{C}/figures"], f"{C}/figures"),
    case("report", ["report", "--runs", f"{C}/runs", "--out", C], C),
    train_into("train-same-config", f"{C}/runs/run1"),
    train_into("train-new-folder", f"{C}/runs/new"),
    train_into("train-through-symlink", "results/to_committed/runs/new"),
    case("train-log", train_argv(NEW, "--log", f"{C}/train.log"), f"{C}/train.log"),
    case("evaluate-default-out", ["evaluate", "--run", f"{C}/runs/run1"], f"{C}/runs/run1/eval.csv"),
    case("partition", partition_argv(f"{C}/partitions/p.json"), f"{C}/partitions/p.json"),
    case("partition-stats", partition_argv("results/p.json", "--stats", f"{C}/partitions/stats.csv"), "stats.csv"),
    case("fleet", [*FLEET, "--out", f"{C}/fleet.json"], f"{C}/fleet.json"),
    case("heatmap", ["heatmap", "--stats", f"{C}/partitions/stats.csv", "--out", f"{C}/h.png"], f"{C}/h.png"),
    case("summarize", [*SUMMARIZE, "--out", f"{C}/summary/complexity.csv"], "complexity.csv"),
    case("reproduce", [*REPRODUCE, "--out", f"{C}/again"], f"{C}/again"),
    case("collect-log", [*COLLECT, "--out", "results/s2", "--log", f"{C}/c.log"], "c.log"),
    case("tables-through-symlink", ["tables", *SUMMARY, "--out", "results/to_committed/tables"], "to_committed/tables"),
]


@pytest.mark.parametrize(("argv", "needles"), READ_ONLY)
def test_read_only_tree_is_never_written(argv, needles, tree, capsys):
    refused_unchanged(argv, [*needles, "read-only results tree", "allowed:"], tree, capsys)


SYMLINKS = [
    case("train-log-symlink-in-run", train_argv("results/runs/linked"), "--out", "results/runs/linked/train.log"),
    onto("train-log-option", train_argv(NEW), "--log", "results/log_link"),
    onto("collect-log", [*COLLECT, "--out", "results/s2"], "--log", "results/log_link"),
]


@pytest.mark.parametrize(("argv", "needles"), SYMLINKS)
def test_no_write_through_a_symlink(argv, needles, tree, capsys):
    refused_unchanged(argv, [*needles, "symbolic link"], tree, capsys)


RESULT_FILES = [
    onto("evaluate-over-history", EVALUATE, "--out", f"{RUN1}/history.csv", EXISTING),
    onto("evaluate-over-summary", EVALUATE, "--out", "results/summary/runs.csv", EXISTING),
    onto("train-log-into-history", train_argv(NEW), "--log", f"{OTHER}/history.csv", EXISTING),
    onto("train-log-into-other-run", train_argv(NEW), "--log", f"{OTHER}/train.log", "inside the run folder"),
    case("partition-over-config", partition_argv(f"{RUN1}/config.yaml"), "--out", "config.yaml"),
    onto("summarize-over-eval", SUMMARIZE, "--out", f"{RUN1}/eval.csv", EXISTING),
    onto("evaluate-log-in-other-run", EVALUATE, "--log", f"{OTHER}/e.log", "inside the run folder"),
]


@pytest.mark.parametrize(("argv", "needles"), RESULT_FILES)
def test_no_output_onto_another_result_file(argv, needles, tree, capsys):
    refused_unchanged(argv, needles, tree, capsys)


RUN_FOLDERS = [
    case(
        "finished-other-config",
        train_argv(RUN1, control=OTHER_CONTROL),
        "--out",
        RUN1,
        "another configuration",
        f"control: '1_4_0.5_iid_fix_e1_bn_1_1' there, '{OTHER_CONTROL}' requested",
    ),
    case("seed-differs", [*train_argv(RUN1), "--seed", "3"], RUN1, "seed: 0 there, 3 requested"),
    train_into("config-only-no-checkpoint", "results/runs/config_only", "another configuration"),
    train_into("run-files-without-config", "results/runs/orphan", "no config.yaml"),
    train_into("unreadable-config", "results/runs/bad_config", "cannot be read"),
    train_into("train-nested-in-run", f"{RUN1}/nested", "inside the run"),
    onto("reproduce-into-run", REPRODUCE, "--out", RUN1, "is the run folder"),
    onto("reproduce-nested", REPRODUCE, "--out", f"{RUN1}/again", "inside the run folder"),
    onto("reproduce-into-other-run", REPRODUCE, "--out", OTHER),
    onto("collect-into-run", COLLECT, "--out", RUN1, "is the run folder"),
    case("tables-into-run", ["tables", *SUMMARY, "--out", f"{RUN1}/tables"], "--out", "inside the run"),
    onto("figures-into-run", FIGURES, "--out", OTHER),
]


@pytest.mark.parametrize(("argv", "needles"), RUN_FOLDERS)
def test_run_folders_hold_one_configuration_and_no_nested_outputs(argv, needles, tree, capsys):
    refused_unchanged(argv, needles, tree, capsys)


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

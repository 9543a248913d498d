"""collect, tables and figures refuse inputs outside their domain: a run counted twice, repeated eval rows,
accuracies outside 0..100, negative seeds, unknown rate letters or datasets. Each case: exit 2, one ``error:``
line naming the file (and its line and column), and the tree unchanged.
"""

from __future__ import annotations

import shutil
from io import StringIO

import pandas as pd
import pytest
from guarded_tree import EVAL, SUMMARY_HISTORY, SUMMARY_RUNS, make_tree, refused, snapshot


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path)
    shutil.copytree(tmp_path / "results" / "runs" / "run1", tmp_path / "results" / "copy")
    bad = tmp_path / "bad"
    bad.mkdir()
    runs = pd.read_csv(StringIO(SUMMARY_RUNS))
    for name, column, value in (
        ("acc_high", "final", 100.5),
        ("acc_low", "best", -0.1),
        ("seed_negative", "seed", -1),
        ("seed_fraction", "seed", 0.5),
        ("letter", "letter", "z"),
        ("global_letter", "global_letter", "f"),
        ("rate", "rate", 0.5),
        ("dataset_path", "dataset", "../MNIST5k"),
        ("dataset_unknown", "dataset", "ImageNet"),
    ):
        runs.assign(**{column: [value]}).to_csv(bad / f"runs_{name}.csv", index=False)
    runs.iloc[0:0].to_csv(bad / "runs_header_only.csv", index=False)
    history = pd.read_csv(StringIO(SUMMARY_HISTORY))
    history.assign(value=[71.0, 172.0]).to_csv(bad / "history_acc.csv", index=False)
    history.assign(letter=["e", "q"]).to_csv(bad / "history_letter.csv", index=False)
    runs_folder = tmp_path / "results" / "runs"
    shutil.copytree(runs_folder / "run1", runs_folder / "dup_eval")
    (runs_folder / "dup_eval" / "eval.csv").write_text(EVAL + EVAL.splitlines()[1] + "\n")
    shutil.copytree(runs_folder / "run1", runs_folder / "acc_eval")
    (runs_folder / "acc_eval" / "eval.csv").write_text(EVAL.replace("50.0,50.0,50.0", "50.0,150.0,50.0"))
    return tmp_path


def tables(runs_csv: str) -> list[str]:
    return ["tables", "--runs-csv", runs_csv, "--out", "results/tables_new"]


def figures(runs_csv: str, history_csv: str = "results/summary/history.csv") -> list[str]:
    return ["figures", "--runs-csv", runs_csv, "--history-csv", history_csv, "--out", "results/figures_new"]


COLLECT = ["collect", "--out", "results/summary_new"]
CASES = [
    (
        "collect-same-run-twice",
        [*COLLECT, "--run", "results/runs/run1", "--run", "results/runs/run1"],
        ["run", "results/runs/run1 is the same folder as results/runs/run1"],
    ),  # fmt: skip
    (
        "collect-same-run-via-expected",
        [*COLLECT, "--run", "results/runs/run1", "--expected", "results/runs/run1/"],
        ["run", "same folder"],
    ),  # fmt: skip
    (
        "collect-run-copied",
        [*COLLECT, "--run", "results/runs/run1", "--run", "results/copy"],
        ["run", "results/copy holds the same run", "as results/runs/run1"],
    ),  # fmt: skip
    (
        "collect-duplicated-eval-row",
        [*COLLECT, "--run", "results/runs/dup_eval"],
        ["eval", "dup_eval/eval.csv line 3", "repeats e Global-Accuracy"],
    ),  # fmt: skip
    (
        "collect-eval-accuracy-150",
        [*COLLECT, "--run", "results/runs/acc_eval"],
        ["eval", "acc_eval/eval.csv line 2, column best", "150.0", "0..100"],
    ),  # fmt: skip
    ("tables-accuracy-above-100", tables("bad/runs_acc_high.csv"), ["runs_acc_high.csv", "column final", "0..100"]),
    ("tables-accuracy-below-0", tables("bad/runs_acc_low.csv"), ["runs_acc_low.csv", "column best", "-0.1"]),
    ("tables-seed-negative", tables("bad/runs_seed_negative.csv"), ["runs_seed_negative.csv", "column seed", ">= 0"]),
    ("tables-seed-fraction", tables("bad/runs_seed_fraction.csv"), ["column seed", "0.5", "integer"]),
    ("tables-unknown-letter", tables("bad/runs_letter.csv"), ["runs_letter.csv", "column letter", "'z'"]),
    ("tables-unknown-global-letter", tables("bad/runs_global_letter.csv"), ["column global_letter", "'f'"]),
    ("tables-rate-not-the-letters", tables("bad/runs_rate.csv"), ["runs_rate.csv", "column rate", "0.5"]),
    ("tables-path-like-dataset", tables("bad/runs_dataset_path.csv"), ["column dataset", "'../MNIST5k'", "MNIST5k"]),
    ("tables-unknown-dataset", tables("bad/runs_dataset_unknown.csv"), ["column dataset", "ImageNet", "CIFAR10"]),
    ("tables-header-only", tables("bad/runs_header_only.csv"), ["--runs-csv", "runs_header_only.csv", "no rows"]),
    ("figures-header-only", figures("bad/runs_header_only.csv"), ["--runs-csv", "runs_header_only.csv", "no rows"]),
    ("figures-accuracy-above-100", figures("bad/runs_acc_high.csv"), ["runs_acc_high.csv", "column final"]),
    (
        "figures-history-accuracy",
        figures("results/summary/runs.csv", "bad/history_acc.csv"),
        ["history_acc.csv line 3, column value", "172.0", "0..100"],
    ),  # fmt: skip
    (
        "figures-history-letter",
        figures("results/summary/runs.csv", "bad/history_letter.csv"),
        ["history_letter.csv line 3, column letter", "'q'"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_report_inputs_out_of_domain_are_refused(argv, needles, tree, capsys):
    before = snapshot(tree)
    line = refused(argv, capsys)
    for needle in needles:
        assert needle in line, (needle, line)
    assert snapshot(tree) == before


def test_in_domain_summary_is_accepted(tree, capsys):
    """The same summary, untouched, makes tables: the checks above refuse the edits, not the file."""
    from heterofl.cli import main

    assert main(tables("results/summary/runs.csv")) == 0, capsys.readouterr().err
    assert (tree / "results" / "tables_new" / "index.md").is_file()

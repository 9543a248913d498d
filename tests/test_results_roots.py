"""Where the pipeline may write and what it may read instead of training (results_roots.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from heterofl.config import Control, ExperimentConfig
from heterofl.io import write_csv, write_yaml
from heterofl.results_roots import (
    OWNER_FILE,
    READ_ONLY_MARKER,
    check_owner,
    check_roots,
    claim,
    damaged_run_files,
    run_sources,
)

KEY = "MNIST5k/conv/1_5_0.4_iid_fix_e1_bn_1_1/seed0"


def _config(**settings) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {"dataset": "MNIST5k", "model": "conv", "control": Control.parse(KEY.split("/")[2]), "seed": 0, **settings}
    )


def _finished_run(folder, config: ExperimentConfig, final: float = 90.0) -> None:
    write_yaml(folder / "config.yaml", config.to_dict())
    write_csv(folder / "history.csv", pd.DataFrame({"round": [1, 2], "e_Global-Accuracy": [80.0, final]}))
    write_csv(
        folder / "eval.csv",
        pd.DataFrame(
            {
                "letter": ["e"],
                "rate": [0.0625],
                "metric": ["Global-Accuracy"],
                "final": [final],
                "best": [final],
                "mean_last_k": [final],
                "evaluations": [2],
            }
        ),
    )


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "committed").mkdir(parents=True)
    (tmp_path / "results" / "committed" / READ_ONLY_MARKER).write_text("read-only\n")
    return tmp_path


def test_a_root_inside_a_read_only_tree_is_refused(tree):
    assert check_roots("results", "results/committed") == []
    (problem,) = check_roots("results/committed/mine", None)
    assert problem.startswith("results: results/committed/mine is inside the read-only results tree results/committed")


@pytest.mark.parametrize(
    ("results", "cache", "expected"),
    [
        ("results", "results", "overlaps the outputs"),
        ("results", "results/runs", "overlaps the outputs"),
        ("out/x", "out", "is inside cache"),
        ("results", "nowhere", "is not a folder"),
    ],
)
def test_a_cache_that_overlaps_the_outputs_or_is_missing_is_refused(tree, results, cache, expected):
    (tree / "results" / "runs").mkdir()
    (tree / "out" / "x").mkdir(parents=True)
    (problem,) = check_roots(results, cache)
    assert expected in problem


def test_a_root_belongs_to_the_config_file_that_ran_first(tree):
    (tree / "config").mkdir()
    assert check_owner("results", ["config/config.yaml"]) == []  # nobody owns it yet
    claim("results", ["config/config.yaml", "config/config.yaml"])
    assert check_owner("results", [tree / "config" / "config.yaml"]) == []  # absolute paths are the same file
    (problem,) = check_owner("results", ["config/mine.yaml"])
    assert "results: results holds the outputs of config/config.yaml" in problem and OWNER_FILE in problem
    claim("results", ["config/mine.yaml"])  # a second claim never steals the root
    assert check_owner("results", ["config/mine.yaml"]) != []


def test_sources_prefer_a_finished_own_run_then_a_matching_cached_run(tree):
    cached = tree / "results" / "committed" / "runs" / KEY
    cached.mkdir(parents=True)
    _finished_run(cached, _config(rounds=2))
    plan = run_sources({KEY: _config(rounds=2)}, "results", "results/committed")
    assert plan["sources"][KEY] == cached.relative_to(tree) and plan["cached"] == [KEY]
    # Other result-defining settings: the cached run does not stand for this one, so it is trained here.
    plan = run_sources({KEY: _config(rounds=3)}, "results", "results/committed")
    assert str(plan["sources"][KEY]) == f"results/runs/{KEY}"
    assert plan["reasons"] == {KEY: "settings differ from the cached run's"}
    # Where the data lives does not change results, so it does not stop the cache from being used.
    assert run_sources({KEY: _config(rounds=2, data_root="elsewhere")}, "results", "results/committed")["cached"]
    # No cache configured (a full reproduction): everything is this root's.
    assert run_sources({KEY: _config(rounds=2)}, "results", None)["cached"] == []
    own = tree / "results" / "runs" / KEY
    own.mkdir(parents=True)
    _finished_run(own, _config(rounds=2))
    assert run_sources({KEY: _config(rounds=2)}, "results", "results/committed")["cached"] == []


def test_damaged_metric_files_are_named_with_row_and_column(tree):
    folder = tree / "run"
    folder.mkdir()
    _finished_run(folder, _config())
    assert damaged_run_files(folder) == []
    frame = pd.read_csv(folder / "eval.csv")
    frame.loc[0, "best"] = float("nan")
    write_csv(folder / "eval.csv", frame)
    (problem,) = damaged_run_files(folder)
    assert problem.startswith(f"eval: {folder / 'eval.csv'} line 2, column best is empty")
    _finished_run(folder, _config())
    (folder / "eval.csv").write_text((folder / "eval.csv").read_text().replace(",90.0,2", ",inf,2"))
    (problem,) = damaged_run_files(folder)
    assert problem.startswith(f"eval: {folder / 'eval.csv'} line 2, column mean_last_k")
    (folder / "eval.csv").write_text("")
    assert damaged_run_files(folder)[0].startswith(f"eval: {folder / 'eval.csv'} is empty")
    (folder / "history.csv").write_text("lr\n0.1\n")
    assert damaged_run_files(folder)[0].startswith(f"history: {folder / 'history.csv'}")
    (folder / "config.yaml").write_text("dataset: [unclosed\n")
    assert damaged_run_files(folder)[0].startswith(f"{folder / 'config.yaml'} is damaged")

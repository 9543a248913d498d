"""The Snakemake pipeline end to end on the tiny CI grid: a real run, then figures from the cache alone.

Each test copies ``workflow/`` and ``config/`` into a temporary folder and runs Snakemake there, so the
repository's own ``results/`` is never touched.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _workspace(tmp_path: Path, with_results: bool = False) -> Path:
    work = tmp_path / "wf"
    shutil.copytree(REPO / "workflow", work / "workflow")
    shutil.copytree(REPO / "config", work / "config")
    if with_results:  # only what git holds of results/ (a developer's tree also has models, partitions, figures)
        ignored = shutil.ignore_patterns("*.pt", "*.json", "*.pdf", "*.png", "*.log", "FAILED", ".snakemake_timestamp")
        shutil.copytree(REPO / "results", work / "results", ignore=ignored)
    return work


def _snakemake(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result


def _planned_jobs(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table of a dry run into {rule: count}."""
    jobs = {}
    for line in output.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def _age_randomly(root: Path) -> None:
    """Give every file a random mtime, as a fresh git clone does (no order between inputs and outputs)."""
    rng = random.Random(0)
    for path in root.rglob("*"):
        if path.is_file():
            stamp = 1_700_000_000 + rng.randint(0, 10_000)
            os.utime(path, (stamp, stamp))


def test_ci_grid_runs_then_figures_rebuild_from_cache_without_training(tmp_path):
    work = _workspace(tmp_path)
    _snakemake(work, "--cores", "2", "--configfile", "config/ci.yaml")
    results = work / "results-ci"
    runs = sorted(results.glob("runs/*/*/*/seed0"))
    assert len(runs) == 4
    for run in runs:
        evaluation = pd.read_csv(run / "eval.csv")
        assert set(evaluation["letter"]) >= {"e"}
        history = pd.read_csv(run / "history.csv")
        assert list(history["round"]) == [1, 2]
    summary = pd.read_csv(results / "summary" / "runs.csv")
    assert summary[["control", "seed"]].drop_duplicates().shape[0] == 4
    assert (results / "tables" / "combination_MNIST5k.md").is_file()
    assert (results / "figures" / "results" / "submodels_MNIST5k_iid.png").stat().st_size > 1000
    assert (results / "figures" / "partitions" / "MNIST5k_non-iid-2_users5_seed0.png").is_file()
    before = (results / "summary" / "runs.csv").read_bytes()

    # A run whose model is lost is retrained, and everything downstream of it follows.
    (runs[0] / "model.pt").unlink()
    plan = _planned_jobs(_snakemake(work, "-n", "--configfile", "config/ci.yaml").stdout)
    downstream = ("train_run", "evaluate", "aggregate", "tables", "figures_results")
    assert {k: plan.get(k) for k in downstream} == dict.fromkeys(downstream, 1), plan

    # A fresh clone: no Snakemake metadata, no models, checkpoints, partitions, logs, tables or figures.
    shutil.rmtree(work / ".snakemake")
    shutil.rmtree(work / "logs")
    shutil.rmtree(results / "tables")
    shutil.rmtree(results / "figures")
    for pattern in ("runs/**/*.pt", "partitions/**/*.json"):
        for path in results.glob(pattern):
            path.unlink()
    _age_randomly(work)
    plan = _planned_jobs(_snakemake(work, "figures", "-n", "--configfile", "config/ci.yaml").stdout)
    # The aggregation may rerun from the committed CSVs (cheap, deterministic); nothing may train.
    assert not {"partition", "train_run", "evaluate"} & set(plan), plan
    assert plan.get("tables") == 1 and plan.get("figures_results") == 1 and plan.get("partition_heatmap") == 2
    _snakemake(work, "figures", "--cores", "2", "--configfile", "config/ci.yaml")
    assert (results / "tables" / "combination_MNIST5k.md").is_file()
    assert (results / "figures" / "results" / "learning_curve_MNIST5k_non-iid-2_local.pdf").is_file()
    assert (results / "summary" / "runs.csv").read_bytes() == before
    assert not list(results.glob("runs/**/*.pt")), "figures must not retrain"


def test_committed_default_results_rebuild_figures_without_training(tmp_path):
    work = _workspace(tmp_path, with_results=True)
    committed = work / "results"
    if not (committed / "summary" / "runs.csv").is_file():
        pytest.fail("results/summary/runs.csv is not committed: run `make run` and commit the metric files")
    for folder in ("tables", "figures"):
        shutil.rmtree(committed / folder, ignore_errors=True)
    _age_randomly(work)
    before = (committed / "summary" / "runs.csv").read_bytes()
    plan = _planned_jobs(_snakemake(work, "figures", "-n").stdout)
    assert not {"partition", "train_run", "evaluate"} & set(plan), plan
    _snakemake(work, "figures", "--cores", "2")
    assert (committed / "tables" / "index.md").is_file()
    assert (committed / "figures" / "results" / "interpolation_MNIST5k_iid_global.png").is_file()
    assert (committed / "summary" / "runs.csv").read_bytes() == before


def test_keep_going_builds_tables_from_finished_runs_and_lists_failures(tmp_path):
    work = _workspace(tmp_path)
    config = yaml.safe_load((work / "config" / "ci.yaml").read_text())
    config["results"] = "results-kg"
    config["experiments"] = [
        {
            "name": "ok",
            "dataset": "MNIST5k",
            "num_users": 5,
            "frac": 0.4,
            "splits": ["iid"],
            "fix": ["e1"],
            "settings": {"rounds": 2, "local_epochs": 1, "eval_rates": "global"},
        },
        {
            "name": "diverges",
            "dataset": "MNIST5k",
            "num_users": 5,
            "frac": 0.4,
            "splits": ["iid"],
            "fix": ["d1"],
            "settings": {"rounds": 3, "local_epochs": 1, "lr": 1e30, "batch_size_train": 1000},
        },
    ]
    (work / "config" / "kg.yaml").write_text(yaml.safe_dump(config))
    result = _snakemake(work, "--cores", "2", "--keep-going", "--configfile", "config/kg.yaml", check=False)
    assert result.returncode != 0
    results = work / "results-kg"
    good = results / "runs/MNIST5k/conv/1_5_0.4_iid_fix_e1_bn_1_1/seed0"
    bad = results / "runs/MNIST5k/conv/1_5_0.4_iid_fix_d1_bn_1_1/seed0"
    assert (good / "eval.csv").is_file()
    assert (bad / "FAILED").is_file() and not (bad / "config.yaml").exists() and not (bad / "history.csv").exists()
    missing = (results / "summary" / "missing_runs.txt").read_text().splitlines()
    assert missing == [str(Path("results-kg/runs/MNIST5k/conv/1_5_0.4_iid_fix_d1_bn_1_1/seed0"))]
    summary = pd.read_csv(results / "summary" / "runs.csv")
    assert set(summary["control"]) == {"1_5_0.4_iid_fix_e1_bn_1_1"}
    assert (results / "tables" / "index.md").is_file()

"""The Snakemake pipeline end to end on the tiny CI grid: a real run, then figures from the cache alone.

Each test copies ``workflow/`` and ``config/`` into a temporary folder and runs Snakemake there, so the
repository's own ``results/`` is never touched.
"""

from __future__ import annotations

import base64
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
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
    shutil.copy(REPO / ".gitignore", work / ".gitignore")
    if with_results:  # only what git holds of results/ (the committed, read-only cache)
        ignored = shutil.ignore_patterns("*.pt", "*.json", "*.pdf", "*.png", "*.log", "FAILED", ".snakemake_timestamp")
        shutil.copytree(REPO / "results" / "committed", work / "results" / "committed", ignore=ignored)
    return work


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _git(work: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    result = subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, text=True, check=True)
    return result.stdout


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
    assert (results / "figures" / "results" / "rates_heatmap_MNIST5k_iid.png").stat().st_size > 1000
    assert (results / "figures" / "partitions" / "MNIST5k_non-iid-2_users5_seed0.png").is_file()
    before = (results / "summary" / "runs.csv").read_bytes()

    # A run whose model is lost is retrained, and everything downstream of it follows.
    (runs[0] / "model.pt").unlink()
    plan = _planned_jobs(_snakemake(work, "-n", "--configfile", "config/ci.yaml").stdout)
    downstream = ("train_run", "evaluate", "collect_summary", "tables", "figures_results")
    assert {k: plan.get(k) for k in downstream} == dict.fromkeys(downstream, 1), plan

    # A fresh clone: no Snakemake metadata, no models, checkpoints, partitions, logs, tables or figures.
    shutil.rmtree(work / ".snakemake")
    shutil.rmtree(results / "logs")
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
    assert (results / "figures" / "results" / "learning_curves_MNIST5k_non-iid-2.pdf").is_file()
    assert (results / "summary" / "runs.csv").read_bytes() == before
    assert not list(results.glob("runs/**/*.pt")), "figures must not retrain"


def test_an_edited_setting_is_refused_before_snakemake_deletes_the_run_it_would_rerun(tmp_path):
    """``lr`` is not part of a run's name, so editing it keeps every run's folder; Snakemake deletes a job's
    outputs before it reruns it, which took a finished run's history and model before ``train`` refused its
    checkpoint. The planner now names the folder and the changed setting, and nothing in it changes."""
    from heterofl.grid import expand_runs
    from heterofl.io import write_yaml

    work = _workspace(tmp_path)
    ci = yaml.safe_load((work / "config" / "ci.yaml").read_text())
    run = expand_runs(ci)[0]
    folder = work / ci["results"] / "runs" / run.key
    folder.mkdir(parents=True)
    write_yaml(folder / "config.yaml", run.config.replace(lr=0.5).to_dict())
    (folder / "history.csv").write_text("round\n1\n")
    (folder / "model.pt").write_bytes(b"weeks of GPU time")
    before = _snapshot(folder)
    for args in (("-n",), ("--cores", "1")):
        result = _snakemake(work, *args, "--configfile", "config/ci.yaml", check=False)
        assert result.returncode != 0, args
        needle = f"runs/{run.key} holds a run of other settings (lr: 0.5 there, {run.config.lr!r} requested)"
        assert needle in result.stderr, result.stderr[-2000:]
        assert _snapshot(folder) == before, args


def test_committed_default_results_rebuild_figures_without_training(tmp_path):
    work = _workspace(tmp_path, with_results=True)
    committed = work / "results" / "committed"
    if not (committed / "summary" / "runs.csv").is_file():
        pytest.fail("results/committed/summary/runs.csv is not committed: run `make run`, `make publish` and commit")
    _age_randomly(work)
    before = _snapshot(committed)
    plan = _planned_jobs(_snakemake(work, "figures", "-n").stdout)
    assert not {"partition", "train_run", "evaluate"} & set(plan), plan
    _snakemake(work, "figures", "--cores", "2")
    fresh = work / "results"
    assert (fresh / "figures" / "results" / "interpolation_MNIST5k.png").is_file()
    assert (fresh / "figures" / "partitions" / "MNIST5k_non-iid-2_users20_seed0.png").is_file()
    # The committed summary and tables are exactly what the committed runs give with the code of this tree.
    assert (fresh / "summary" / "runs.csv").read_bytes() == (committed / "summary" / "runs.csv").read_bytes()
    for table in sorted((committed / "tables").glob("*")):
        assert (fresh / "tables" / table.name).read_bytes() == table.read_bytes(), table.name
    assert _snapshot(committed) == before, "the committed cache is read-only"
    assert not list(fresh.glob("runs/**/*")), "figures must not train"


def test_ctrl_c_during_a_full_reproduction_changes_no_committed_file(tmp_path):
    """SIGINT to the whole process group (what Ctrl-C does) while the first runs train, as in `make run`."""
    work = _workspace(tmp_path, with_results=True)
    _git(work, "init", "-q")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "clone")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    output = (tmp_path / "snakemake.out").open("w")  # read back when the test fails
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--config", "cache="],
        cwd=work,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # as in a terminal's foreground job: a test started in the background (`cmd &` in a script) inherits
        # SIGINT ignored, and Python then installs no KeyboardInterrupt handler anywhere below it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while not list((work / "results" / "runs").glob("**/checkpoint.pt")):  # a run is mid-training
            assert process.poll() is None and time.monotonic() < deadline, "no run started training"
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            tree = subprocess.run(["ps", "-o", "pid,pgid,stat,etime,args", "-g", str(process.pid)], capture_output=True)
            output.flush()
            pytest.fail(
                "Snakemake still runs 180 s after Ctrl-C; its processes:\n"
                + tree.stdout.decode()
                + "\noutput:\n"
                + (tmp_path / "snakemake.out").read_text()[-4000:]
            )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        output.close()
    assert process.returncode != 0, (tmp_path / "snakemake.out").read_text()[-3000:]
    assert _git(work, "status", "--porcelain", "--untracked-files=all") == ""
    _snakemake(work, "--unlock")
    plan = _planned_jobs(_snakemake(work, "figures", "-n").stdout)
    assert not {"partition", "train_run", "evaluate"} & set(plan), plan

    # The root now belongs to config/config.yaml: a user's own config cannot write there ...
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config["seeds"] = [1]
    (work / "config" / "mine.yaml").write_text(yaml.safe_dump(config))
    refused = _snakemake(work, "-n", "--configfile", "config/mine.yaml", check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode != 0 and len(errors) == 1, refused.stderr[-2000:]
    assert "results: results holds the outputs of config/config.yaml" in errors[0]
    # ... nor into the committed tree.
    config["results"] = "results/committed/mine"
    (work / "config" / "mine.yaml").write_text(yaml.safe_dump(config))
    refused = _snakemake(work, "-n", "--configfile", "config/mine.yaml", check=False)
    assert refused.returncode != 0 and "read-only results tree results/committed" in refused.stderr
    assert _git(work, "status", "--porcelain") == "?? config/mine.yaml\n"


def test_a_failing_config_and_a_damaged_cache_change_nothing_else(tmp_path):
    work = _workspace(tmp_path, with_results=True)
    committed = work / "results" / "committed"
    before = _snapshot(committed)
    # A config that fails in its training job (no GPU here), with its own root: the onerror handler writes
    # only under that root, and the committed cache stays byte-identical.
    config = yaml.safe_load((work / "config" / "ci.yaml").read_text())
    config.update(results="results-fail", device="cuda")
    config["experiments"][0]["fix"], config["experiments"][0]["dynamic"] = ["e1"], []
    config["experiments"][0]["splits"] = ["iid"]
    (work / "config" / "fail.yaml").write_text(yaml.safe_dump(config))
    failed = _snakemake(work, "--cores", "1", "--configfile", "config/fail.yaml", check=False)
    assert failed.returncode != 0
    assert (work / "results-fail" / "summary" / "missing_runs.txt").read_text().count("\n") == 1
    assert _snapshot(committed) == before
    assert not (work / "results" / "summary").exists()

    # A damaged cached file is named at planning time; nothing runs and nothing is deleted.
    _snakemake(work, "figures", "--cores", "2")
    summary = _snapshot(work / "results" / "summary")
    damaged = next(committed.glob("runs/*/*/*a1_bn_1_1/seed0/eval.csv"))
    text = damaged.read_text().splitlines()
    text[2] = ",".join(text[2].split(",")[:3] + ["nan"] + text[2].split(",")[4:])
    damaged.write_text("\n".join(text) + "\n")
    result = _snakemake(work, "figures", "-n", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr[-2000:]
    assert str(damaged.relative_to(work)) in errors[0] and "line 3, column final" in errors[0]
    assert _snapshot(work / "results" / "summary") == summary


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


def test_report_holds_tables_and_figures_without_warnings_and_index_lists_every_figure(tmp_path):
    """A fresh clone's `snakemake figures` then `snakemake --report` on a few committed runs (no training): the
    report embeds each table as HTML with its caption, prints no warning, and tables/index.md links every figure."""
    work = _workspace(tmp_path, with_results=True)
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config["results"] = "results-small"  # read from the committed cache: same settings, a subset of its runs
    experiment = config["experiments"][0]
    experiment.update(splits=["iid"], fix=["a1", "e1", "a5-e5"], dynamic=[])
    (work / "config" / "small.yaml").write_text(yaml.safe_dump(config))
    _age_randomly(work)
    built = _snakemake(work, "figures", "--cores", "2", "--configfile", "config/small.yaml")
    assert "train_run" not in built.stdout + built.stderr
    report = _snakemake(work, "--report", "report.html", "--configfile", "config/small.yaml")
    output = report.stdout + report.stderr
    assert "warning" not in output.lower() and "Missing metadata" not in output, output[-3000:]
    html = (work / "report.html").read_text()
    embedded = re.search(r"combination_MNIST5k\.html;base64,([A-Za-z0-9+/=]+)", html)
    assert embedded, "the combination table is not in the report"
    table = base64.b64decode(embedded.group(1)).decode()
    assert "<table" in table and "IID Accuracy" in table and "Paper" not in table  # MNIST5k is not the paper's
    assert "The paper&#x27;s Table 1" in html or "The paper's Table 1" in html  # its caption
    html_text = html.replace("&#x27;", "'")
    # figure captions and subcategories come from the figure table (heterofl.report.figures.registry)
    assert "The dashed step line is the Pareto front" in html_text and "Accuracy against cost" in html_text
    assert "Training samples per client (rows) and label (columns) of the partition" in html_text
    results = work / "results-small"
    index = (results / "tables" / "index.md").read_text()
    figures = sorted(results.glob("figures/*/*.png"))
    assert any(p.parent.name == "results" for p in figures) and any(p.parent.name == "partitions" for p in figures)
    for png in figures:
        assert f"({Path('..', *png.relative_to(results).parts).as_posix()})" in index, png.name
        assert f"`{png.stem}`" in index
    assert "None." not in index
    for table_md in (results / "tables").glob("*.md"):
        if table_md.name != "index.md":
            assert f"`{table_md.stem}`" in index and (table_md.with_suffix(".html")).is_file()


def test_a_new_users_grid_of_methods_and_fix_mixes_runs_through_tables_and_figures(tmp_path):
    """A new user's first config (issue 24): several methods, fix mixes only, two seeds, nothing else. It once
    crashed at the tables step (KeyError 'global_letter'); now tables and figures are written and the methods
    table's means are the seeds' means of each run's own eval.csv."""
    work = _workspace(tmp_path)
    config = yaml.safe_load((work / "config" / "ci.yaml").read_text())
    config.update(results="results-new", seeds=[0, 1])
    config["experiments"] = [
        {
            "name": "mine",
            "dataset": "MNIST5k",
            "num_users": 5,
            "frac": 0.4,
            "splits": ["iid"],
            "methods": ["heterofl", "fedrolex"],
            "fix": ["a1-c2-e7"],
            "settings": {"rounds": 2, "local_epochs": 1, "eval_rates": "global"},
        }
    ]
    (work / "config" / "mine.yaml").write_text(yaml.safe_dump(config))
    _snakemake(work, "--cores", "2", "--configfile", "config/mine.yaml")
    results = work / "results-new"
    raw = pd.read_csv(results / "tables" / "methods_MNIST5k_iid_raw.csv")
    raw = raw[raw["kind"] == "Global"]
    assert set(raw["method"]) == {"heterofl", "fedrolex"}
    runs = results / "runs" / "MNIST5k" / "conv"
    for method, suffix in (("heterofl", ""), ("fedrolex", "+fedrolex")):
        evals = [
            pd.read_csv(runs / f"1_5_0.4_iid_fix_a1-c2-e7_bn_1_1{suffix}" / f"seed{s}" / "eval.csv") for s in (0, 1)
        ]
        for letter in "abcde":
            values = [
                e.loc[(e["letter"] == letter) & (e["metric"] == "Global-Accuracy"), "final"].item() for e in evals
            ]
            row = raw[(raw["method"] == method) & (raw["letter"] == letter)].iloc[0]
            assert row["mean"] == pytest.approx(sum(values) / 2) and row["n"] == 2
    index = (results / "tables" / "index.md").read_text()
    pngs = sorted((results / "figures").glob("*/*.png"))
    assert {"methods_MNIST5k_iid", "learning_curves_MNIST5k_iid"} <= {p.stem for p in pngs}
    for png in pngs:
        assert f"`{png.stem}`" in index and png.stat().st_size > 0
    # every training and evaluation job's time and memory (benchmark: directive), summarised per step
    jobs = pd.read_csv(results / "summary" / "jobs.csv")
    keys = sorted(str(p.relative_to(results / "runs").as_posix()) for p in (results / "runs").glob("*/*/*/seed*"))
    for step in ("train", "evaluate"):
        part = jobs[jobs["step"] == step]
        assert sorted(part["run"]) == keys and (part["seconds"] > 0).all()
    assert "| train" in (results / "summary" / "jobs.md").read_text()
    report = _snakemake(work, "--report", "report.html", "--configfile", "config/mine.yaml")
    assert "warning" not in (report.stdout + report.stderr).lower()
    assert "Resources" in (work / "report.html").read_text()

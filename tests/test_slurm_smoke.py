"""End-to-end SLURM smoke test: a toy 3-rule workflow goes through a real (local) SLURM cluster.

Run it with the one-node cluster from .ci/slurm-up.sh:

    bash .ci/slurm-up.sh
    HETEROFL_SLURM=1 .venv/bin/python -m pytest tests/test_slurm_smoke.py -q
    bash .ci/slurm-down.sh

The workflow (tests/slurm_smoke/Snakefile) is copied to a temporary directory and run with
``--workflow-profile workflow/profiles/slurm-test`` (the workflow profile, so that a
``workflow/profiles/default`` cannot override it key by key). Each job writes the SLURM job id
it ran under into its output; the test then checks with ``scontrol`` that those jobs exist,
completed, ran in the temporary directory, and that the ``train`` job was given the GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "slurm_smoke"
PROFILE = REPO / "workflow" / "profiles" / "slurm-test"
RULES = ("prepare", "train_run", "report")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("HETEROFL_SLURM") != "1",
        reason="set HETEROFL_SLURM=1 after .ci/slurm-up.sh",
    ),
]


def _scontrol_job(job_id: str) -> str:
    res = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"scontrol does not know job {job_id}: {res.stderr.strip()}"
    return res.stdout


def _field(record: str, key: str) -> str:
    m = re.search(rf"(?:^|\s){re.escape(key)}=(\S*)", record)
    return m.group(1) if m else ""


def _snakemake(workdir: Path, *options: str) -> subprocess.CompletedProcess:
    """Snakemake on ``workdir/Snakefile`` through the slurm-test profile, output captured."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(PROFILE),
        "--show-failed-logs",
        *options,
    ]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)


def test_toy_workflow_runs_through_slurm(tmp_path: Path) -> None:
    assert shutil.which("sbatch") and shutil.which("scontrol"), "SLURM client tools not on PATH"
    workdir = tmp_path / "wf"
    shutil.copytree(TOY, workdir)

    res = _snakemake(workdir)
    log = (res.stdout + res.stderr)[-6000:]
    assert res.returncode == 0, f"snakemake failed ({res.returncode}):\n{log}"
    assert "Using workflow specific profile" in log or str(PROFILE) in log, log

    job_ids: dict[str, str] = {}
    for rule in RULES:
        out = workdir / "out" / f"{rule}.txt"
        assert out.exists(), f"{out} missing\n{log}"
        content = out.read_text().strip()
        assert content.isdigit(), f"{rule} did not run under SLURM (job id {content!r})"
        job_ids[rule] = content
        assert (workdir / "logs" / f"{rule}.log").exists()
    assert len(set(job_ids.values())) == len(RULES), f"jobs share an id: {job_ids}"

    for rule, job_id in job_ids.items():
        # Snakemake itself reported the submission ...
        assert re.search(rf"submitted with SLURM jobid {job_id}\b", log), (rule, job_id, log)
        # ... the plugin kept the job's SLURM log (slurm-keep-successful-logs) ...
        slurm_log = workdir / "logs" / "slurm" / f"rule_{rule}" / f"{job_id}.log"
        assert slurm_log.exists(), f"no SLURM log {slurm_log}"
        # ... and the controller knows the job (MinJobAge=300 keeps finished jobs visible).
        rec = _scontrol_job(job_id)
        assert _field(rec, "JobState") == "COMPLETED", rec
        assert _field(rec, "Partition") == "debug", rec
        assert Path(_field(rec, "WorkDir")).resolve() == workdir.resolve(), rec
        assert _field(rec, "Comment") == f"rule_{rule}", rec
        gpu_fields = " ".join(_field(rec, k) for k in ("TRES", "TresPerJob", "TresPerNode", "Gres", "CpusPerTres"))
        if rule == "train_run":
            assert "gpu" in gpu_fields, f"train job {job_id} got no GPU:\n{rec}"
        else:
            assert "gpu" not in gpu_fields, f"{rule} job {job_id} asked for a GPU:\n{rec}"

    # Inside the job, SLURM exported the GPU allocation.
    train_log = (workdir / "logs" / "train_run.log").read_text()
    assert "GPUS=1" in train_log, train_log


def test_pipeline_tiny_config_runs_through_slurm(tmp_path: Path) -> None:
    """The real workflow, one tiny run, through the slurm-test profile: partition, train, evaluate are sbatch jobs."""
    import yaml

    work = tmp_path / "pipeline"
    shutil.copytree(REPO / "workflow", work / "workflow")
    shutil.copytree(REPO / "config", work / "config")
    config = yaml.safe_load((work / "config" / "ci.yaml").read_text())
    config["results"] = "results-slurm"
    config["resources"]["train"]["mem_mb"] = 1500
    config["experiments"] = [
        {
            "name": "slurm",
            "dataset": "MNIST5k",
            "num_users": 5,
            "frac": 0.4,
            "splits": ["iid"],
            "fix": ["e1"],
            "settings": {"rounds": 1, "local_epochs": 1, "eval_rates": "global"},
        }
    ]
    (work / "config" / "slurm.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--workflow-profile",
        str(PROFILE),
        "--configfile",
        "config/slurm.yaml",
        "--show-failed-logs",
    ]
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    log = res.stdout + res.stderr
    assert res.returncode == 0, f"snakemake failed ({res.returncode}):\n{log[-6000:]}"

    submitted = dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: [^)]*rule_(\w+)", log))
    if not submitted:  # fall back to pairing the plugin's log paths with the job ids
        submitted = {m[0]: m[1] for m in re.findall(r"jobid (\d+) \(log: \S*/rule_(\w+)/", log)}
    rules = sorted(submitted.values())
    assert rules == ["evaluate", "partition", "train_run"], f"expected these sbatch jobs, got {submitted}\n{log}"
    for job_id, rule in submitted.items():
        record = _scontrol_job(job_id)
        assert _field(record, "JobState") == "COMPLETED", record
        gpu = " ".join(_field(record, k) for k in ("TresPerJob", "TresPerNode", "Gres", "CpusPerTres"))
        assert ("gpu" in gpu) == (rule == "train_run"), (rule, record)
    train_id = next(job for job, rule in submitted.items() if rule == "train_run")
    run = work / "results-slurm" / "runs" / "MNIST5k" / "conv" / "1_5_0.4_iid_fix_e1_bn_1_1" / "seed0"
    assert (run / "eval.csv").is_file() and (run / "model.pt").is_file()
    train_log = (
        work / "results-slurm" / "logs" / "train" / "MNIST5k" / "conv" / "1_5_0.4_iid_fix_e1_bn_1_1" / "seed0.log"
    )
    assert f"running as SLURM job {train_id}" in train_log.read_text()
    assert (work / "results-slurm" / "tables" / "index.md").is_file()


# ------------------------------------------------------------------------ several runs per GPU (README)


def _pack(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, Path, dict[str, str]]:
    """The packing toy through the slurm-test profile with ``options``; (result, workdir, sbatch id -> rule)."""
    workdir = tmp_path / "pack"
    workdir.mkdir()
    shutil.copy(TOY / "pack.smk", workdir / "Snakefile")
    res = _snakemake(workdir, *options)
    log = res.stdout + res.stderr
    jobs = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/logs/slurm/(\w+)/", log))
    return res, workdir, jobs


def _intervals(workdir: Path) -> list[tuple[float, float]]:
    spans = []
    for i in range(4):
        text = (workdir / "logs" / f"run{i}.log").read_text()
        spans.append((float(re.search(r"start=(\S+)", text).group(1)), float(re.search(r"end=(\S+)", text).group(1))))
    return spans


def test_gpu_shards_run_several_training_jobs_on_one_gpu_at_once(tmp_path: Path) -> None:
    """`gres: shard:1` instead of `gpu: 1`: one sbatch per run, each holding a shard of the one GPU, and
    SLURM starts them side by side (as many as the node's CPUs allow: 2 here)."""
    res, workdir, jobs = _pack(tmp_path, "--set-resources", "train_run:gpu=0", "train_run:gres=shard:1")
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    assert len(jobs) == 4, jobs
    for job_id in jobs:
        record = _scontrol_job(job_id)
        assert _field(record, "TresPerNode") == "gres:shard:1", record
        assert "gpu" not in _field(record, "TresPerJob"), record
    spans = _intervals(workdir)
    overlapping = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert overlapping >= 2, f"no two runs shared the GPU at the same time: {spans}"


GROUP_OF_4 = ("--groups", "train_run=pack", "--group-components", "pack=4")


def test_a_group_of_four_runs_asks_for_one_runs_resources_and_four_runtimes(tmp_path: Path) -> None:
    """`--groups` with `--group-components 4` and the profile as it is (`gpu: 1`, `cpus_per_gpu: 1`, and the
    per-group `group_slot` limit): one sbatch job for four runs that asks for one run's memory, CPUs and GPU
    and four runs' runtime, and the plugin runs the four one after another in it."""
    res, workdir, jobs = _pack(tmp_path, *GROUP_OF_4)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    assert list(jobs.values()) == ["group_pack_train_run"], jobs
    (job_id,) = jobs
    record = _scontrol_job(job_id)
    assert _field(record, "JobState") == "COMPLETED", record
    # pack.smk: each run has mem_mb=200, runtime=2 (minutes), 1 thread; the profile adds gpu=1, cpus_per_gpu=1
    assert _field(record, "TimeLimit") == "00:08:00", record  # 4 x 2 min: the runs in sequence
    assert _field(record, "MinMemoryNode") == "200M", record  # one run's memory, not 4 x 200
    assert _field(record, "NumCPUs") == "1", record  # one run's CPUs
    assert _field(record, "TresPerJob") == "gres:gpu:1", record  # one GPU, not --gpus=4
    assert _field(record, "CpusPerTres") == "gres:gpu:1", record
    assert [(workdir / "out" / f"run{i}.txt").read_text().strip() for i in range(4)] == [job_id] * 4
    assert all("gpus=1" in (workdir / "logs" / f"run{i}.log").read_text() for i in range(4))
    spans = sorted(_intervals(workdir))
    assert all(spans[k][1] <= spans[k + 1][0] for k in range(3)), f"runs overlapped: {spans}"


def test_a_failed_run_in_a_group_is_named_with_its_log(tmp_path: Path) -> None:
    """Run 2 of the group fails. Snakemake lists every member of the group as failed (`message: None`); the
    group's SLURM log, which the profile prints (`show-failed-logs`), names the one that failed and its log."""
    res, workdir, jobs = _pack(tmp_path, *GROUP_OF_4, "--config", "fail=2", "--retries", "0")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Error in group pack" in out, out[-6000:]
    (job_id,) = jobs
    slurm_log = workdir / "logs" / "slurm" / "group_pack_train_run" / f"{job_id}.log"
    inner = slurm_log.read_text()
    failed_in_group = re.findall(r"Error in rule train_run:\n(?:\s+\w+: .*\n){0,4}?\s+log: (\S+)", inner)
    assert failed_in_group and set(failed_in_group) == {"logs/run2.log"}, inner[-6000:]
    shown = re.search(rf"Logfile \S*/logs/slurm/group_pack_train_run/{job_id}\.log:\n", out)
    assert shown, f"the group's SLURM log was not printed:\n{out[-6000:]}"
    printed = out[shown.end() :]
    assert re.search(r"Error in rule train_run:\n(?:.*\n){0,4}\s+log: logs/run2\.log", printed), out[-6000:]
    assert "returned non-zero exit status 1" in printed
    # Snakemake removes the outputs of every member of a failed group, those that had finished too.
    assert not list(workdir.glob("out/run*.txt"))

"""The conda route: channels that carry every package, and rule environments that run this checkout's code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAME = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _env(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def _conda_names(env: dict) -> set[str]:
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            names.add(dep.split("=")[0].split(">")[0].split("<")[0].strip())
    return names


def _package_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [*project["dependencies"], *project["optional-dependencies"]["train"]]  # conda installs it all
    names = {dep.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for dep in deps}
    return {CONDA_NAME.get(name, name) for name in names}


def test_environments_use_channels_that_carry_current_pytorch_and_the_slurm_plugin():
    user, rules = _env("environment.yml"), _env("workflow/envs/heterofl.yaml")
    workflow_only = {"snakemake", "snakemake-executor-plugin-slurm"}  # the rules' shells do not run Snakemake
    for env, needed in ((user, _package_dependencies()), (rules, _package_dependencies() - workflow_only)):
        assert "pytorch" not in env["channels"], "the pytorch channel stopped at PyTorch 2.5"
        assert env["channels"][0] == "conda-forge"
        assert needed <= _conda_names(env), needed - _conda_names(env)
    assert "bioconda" in user["channels"]  # snakemake-executor-plugin-slurm is on bioconda only
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= _conda_names(user)


def test_rule_environment_holds_no_copy_of_the_package():
    rules = _env("workflow/envs/heterofl.yaml")
    pip = [entry for dep in rules["dependencies"] if isinstance(dep, dict) for entry in dep.get("pip", [])]
    assert not [entry for entry in pip if "/" in entry or entry.startswith((".", "-e"))], pip


def test_the_workflows_heterofl_command_runs_the_code_of_its_own_checkout(tmp_path):
    """A copy of the checkout whose CLI prints a marker: the command next to it runs that copy, not the
    installed package (which is this repository, without the marker)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "workflow" / "scripts", checkout / "workflow" / "scripts")
    cli = checkout / "src" / "heterofl" / "cli.py"
    cli.write_text(cli.read_text() + '\nprint("CLI-OF-THE-COPY")\n')
    done = subprocess.run(
        [sys.executable, str(checkout / "workflow" / "scripts" / "bin" / "heterofl"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CLI-OF-THE-COPY" in done.stdout and "Usage: heterofl" in done.stdout


def test_the_snakefile_puts_that_command_first_on_path():
    snakefile = (ROOT / "workflow" / "Snakefile").read_text()
    assert 'os.path.join(workflow.basedir, "scripts", "bin"),\n        os.path.dirname(sys.executable),' in snakefile
    assert (ROOT / "workflow" / "scripts" / "bin" / "heterofl").stat().st_mode & 0o111


def test_snakemake_run_from_a_venv_without_activating_it_runs_its_jobs_with_that_python(tmp_path):
    """``.venv/bin/snakemake`` with another ``python3`` first on PATH (issue 24: a system Python without torch made
    every job fail): the jobs still run the interpreter Snakemake runs under."""
    work = tmp_path / "wf"
    for folder in ("workflow", "config", "src"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "python3").write_text("#!/bin/sh\necho 'the decoy python3 ran' >&2\nexit 3\n")
    (decoy / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{decoy}{os.pathsep}{os.environ['PATH']}"}
    assert subprocess.run(["python3", "-c", "1"], env=env, capture_output=True).returncode == 3  # the decoy wins
    target = "results-ci/partitions/MNIST5k/iid/users5_seed0.json"
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", target, "--cores", "1", "--configfile", "config/ci.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = "".join(p.read_text() for p in (work / "results-ci" / "logs").rglob("*.log"))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:] + logs
    assert (work / target).is_file() and "decoy" not in logs

"""The SLURM profile offers only resources that take effect: a dry run shows each one on the jobs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"


def _local_rules() -> set[str]:
    """Rules that never go to sbatch: those named by ``localrules:`` and those with no action (targets)."""
    names = set()
    for path in [ROOT / "workflow" / "Snakefile", *(ROOT / "workflow").rglob("*.smk")]:
        text = path.read_text()
        for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", text, flags=re.M):
            names |= set(re.findall(r"\w+", block))
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, flags=re.M | re.S):
            if not re.search(r"^\s+(shell|run|script|notebook|wrapper):", body, flags=re.M):
                names.add(name)
    return names


def _planned_jobs() -> list[tuple[str, bool, dict[str, str]]]:
    """(rule, runs locally, resources) of every job a dry run with the profile plans."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["snakemake", "-n", "--workflow-profile", str(PROFILE), "--config", "cache=", "results=results-profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    jobs, rule, local = [], None, False
    for line in done.stdout.splitlines():
        if match := re.match(r"^(local)?rule (\w+):", line):
            local, rule = bool(match.group(1)) or match.group(2) in _local_rules(), match.group(2)
        elif match := re.match(r"^\s+resources: (.*)$", line):
            jobs.append((rule, local, dict(item.split("=", 1) for item in match.group(1).split(", "))))
    return jobs


def test_slurm_profile_resources_reach_the_jobs():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    jobs = _planned_jobs()
    submitted = [(rule, res) for rule, local, res in jobs if not local]
    assert any(rule == "train_run" for rule, _ in submitted)
    assert "collect_summary" in _local_rules()
    for key, value in (profile.get("default-resources") or {}).items():
        # a default the rules override would be a setting that does nothing
        assert all(res.get(key) == str(value) for _, res in submitted), (key, value)
    for rule, resources in profile.get("set-resources", {}).items():
        for key, value in resources.items():
            planned = [res for name, _, res in jobs if name == rule]
            assert planned and all(res.get(key) == str(value) for res in planned), (rule, key, value)
    # what the rules set themselves: every submitted job has a runtime and a memory request
    assert all("runtime" in res and "mem_mb" in res for _, res in submitted)

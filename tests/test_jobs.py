"""The job-resource summary (issue 24): Snakemake benchmark files of training and evaluation, per step."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest

from heterofl.cli import main
from heterofl.report.jobs import read_benchmarks

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
JOBS = {  # step, run key -> (seconds, max_rss MB, cpu seconds)
    ("train", "MNIST5k/conv/1_20_0.25_iid_fix_a1_bn_1_1/seed0"): (120.0, 900.5, 118.0),
    ("train", "MNIST5k/conv/1_20_0.25_iid_fix_e1_bn_1_1/seed0"): (60.0, 700.0, 59.0),
    ("train", "MNIST5k/conv/1_20_0.25_iid_fix_a1_bn_1_1+fedrolex/seed1"): (90.0, 1200.0, 88.0),
    ("evaluate", "MNIST5k/conv/1_20_0.25_iid_fix_a1_bn_1_1/seed0"): (30.0, 500.0, 29.0),
}


def _write(root: Path) -> None:
    for (step, key), (seconds, rss, cpu) in JOBS.items():
        path = root / step / f"{key}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t95.0\t{cpu}\n")


def test_jobs_summary_matches_the_benchmark_files(tmp_path, capsys) -> None:
    _write(tmp_path / "benchmarks")
    jobs = read_benchmarks(tmp_path / "benchmarks")
    assert sorted(zip(jobs["step"], jobs["run"], strict=True)) == sorted(JOBS)
    out, md = tmp_path / "summary" / "jobs.csv", tmp_path / "summary" / "jobs.md"
    assert main(["jobs", "--benchmarks", str(tmp_path / "benchmarks"), "--out", str(out), "--md", str(md)]) == 0
    assert "3 train jobs" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == len(JOBS)
    text = md.read_text()
    train = [v for (step, _), v in JOBS.items() if step == "train"]
    hours = sum(s for s, _, _ in train) / 3600
    median = statistics.median(s for s, _, _ in train) / 60
    peak = max(r for _, r, _ in train)
    row = next(line for line in text.splitlines() if line.startswith("| train"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["train", "3", f"{hours:.2f}", f"{median:.2f}", f"{2.0:.2f}", f"{peak:.2f}"]
    assert "benchmark files" in text.splitlines()[0]


def test_no_benchmarks_gives_an_empty_table_not_an_error(tmp_path) -> None:
    out, md = tmp_path / "jobs.csv", tmp_path / "jobs.md"
    assert main(["jobs", "--benchmarks", str(tmp_path / "none"), "--out", str(out), "--md", str(md)]) == 0
    assert pd.read_csv(out).empty and "No benchmarked job." in md.read_text()


def test_a_job_too_short_to_sample_has_no_memory_value(tmp_path) -> None:
    path = tmp_path / "train" / "x" / "seed0.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + "0.5\t0:00:00\t-\t-\t-\t-\t-\t-\t-\t-\n")
    jobs = read_benchmarks(tmp_path)
    assert jobs["seconds"].tolist() == [pytest.approx(0.5)] and jobs["max_rss_mb"].isna().all()

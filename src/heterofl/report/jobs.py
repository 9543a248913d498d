"""Time and memory of every training and evaluation job, from Snakemake's ``benchmark:`` files.

The pipeline's ``train_run`` and ``evaluate`` rules write one tab-separated benchmark per job under
``ROOT/benchmarks/{train,evaluate}/<run key>.tsv`` (wall seconds ``s``, peak resident memory ``max_rss`` in MB,
``cpu_time`` in seconds, ``mean_load``). :func:`read_benchmarks` collects them; :func:`job_summary` gives per step
the number of jobs, their total and typical duration and the peak memory, so a grid's next size can be planned.
Runs read from a cache, or trained before the benchmarks existed, have none.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from heterofl.io import write_csv, write_text

STEPS = ("train", "evaluate")
JOB_COLUMNS = ["step", "run", "seconds", "max_rss_mb", "cpu_seconds", "mean_load"]
_FIELDS = {"s": "seconds", "max_rss": "max_rss_mb", "cpu_time": "cpu_seconds", "mean_load": "mean_load"}


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """One row per benchmarked job (the file's last measurement); empty when ``root`` holds none."""
    rows = []
    for step in STEPS:
        folder = Path(root) / step
        for path in sorted(folder.rglob("*.tsv")) if folder.is_dir() else []:
            frame = pd.read_csv(path, sep="\t")
            if frame.empty:
                continue
            last = frame.iloc[-1]
            row = {"step": step, "run": path.relative_to(folder).with_suffix("").as_posix()}
            row.update({name: last.get(field) for field, name in _FIELDS.items()})
            rows.append(row)
    jobs = pd.DataFrame(rows, columns=JOB_COLUMNS)
    numbers = JOB_COLUMNS[2:]
    jobs[numbers] = jobs[numbers].apply(pd.to_numeric, errors="coerce")  # "-" where a job was too short to sample
    return jobs


def job_summary(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per step: jobs, total hours, median and longest minutes, peak resident memory (MB)."""
    rows = []
    for step in STEPS:
        part = jobs[jobs["step"] == step]
        if part.empty:
            continue
        rows.append(
            {
                "step": step,
                "jobs": len(part),
                "total_hours": part["seconds"].sum() / 3600,
                "median_minutes": part["seconds"].median() / 60,
                "max_minutes": part["seconds"].max() / 60,
                "peak_rss_mb": part["max_rss_mb"].max(),
            }
        )
    return pd.DataFrame(rows, columns=["step", "jobs", "total_hours", "median_minutes", "max_minutes", "peak_rss_mb"])


def write_job_resources(benchmarks: str | Path, out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    """``jobs.csv`` (every job) and ``jobs.md`` (the per-step summary, with a caption); returns the summary."""
    jobs = read_benchmarks(benchmarks)
    summary = job_summary(jobs)
    write_csv(out_csv, jobs)
    caption = (
        "Time and memory of the training and evaluation jobs this root ran (Snakemake benchmark files under "
        f"{Path(benchmarks).as_posix()}; runs read from a cache have none)."
    )
    body = summary.to_markdown(index=False, floatfmt=".2f") if not summary.empty else "No benchmarked job."
    write_text(out_md, f"{caption}\n\n{body}\n")
    return summary


__all__ = ["JOB_COLUMNS", "job_summary", "read_benchmarks", "write_job_resources"]

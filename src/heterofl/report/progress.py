"""One line of overall progress for a grid, printed after every training job: runs done, an estimate of the time
left, and when that is.

Snakemake counts steps but does not say when a grid will end. The pipeline writes the runs a root trains
(``ROOT/logs/plan.txt``, one run folder per line) when it starts, and every training job's wall time lands in
its ``benchmark:`` file; from those, the time left is the remaining runs, in batches of the jobs that run at
once, times the median run so far. It is an estimate: runs of one grid differ in size, and a cluster's queue
is not counted.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from heterofl.report.jobs import read_benchmarks
from heterofl.results import RUN_FILES


def progress_line(plan: str | Path, benchmarks: str | Path, parallel: int, now: float | None = None) -> str:
    """``progress: K of N runs trained in ROOT; median S s a run, P at a time: about M min left (until HH:MM UTC)``."""
    folders = [Path(line) for line in Path(plan).read_text().splitlines() if line.strip()]
    done = sum((folder / RUN_FILES["model"]).is_file() for folder in folders)
    head = f"progress: {done} of {len(folders)} runs trained"
    if done == len(folders):
        return f"{head}; none left"
    jobs = read_benchmarks(benchmarks)
    seconds = jobs.loc[jobs["step"] == "train", "seconds"].dropna()
    if seconds.empty:
        return f"{head}; no run timed yet, so no estimate"
    median = float(seconds.median())
    left = math.ceil((len(folders) - done) / max(parallel, 1)) * median
    until = time.strftime("%H:%M UTC", time.gmtime((now if now is not None else time.time()) + left))
    span = f"{left / 60:.0f} min" if left >= 120 else f"{left:.0f} s"
    return f"{head}; median {median:.0f} s a run, {parallel} at a time: about {span} left (until {until})"


__all__ = ["progress_line"]

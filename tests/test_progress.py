"""The grid's progress line: runs done from the plan, time left from the training jobs' benchmark files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from heterofl.cli import cli
from heterofl.report.progress import progress_line

BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _grid(tmp_path: Path, finished: int, timed: list[float]) -> tuple[Path, Path]:
    folders = [tmp_path / "runs" / f"run{i}" / "seed0" for i in range(4)]
    for i, folder in enumerate(folders):
        folder.mkdir(parents=True)
        if i < finished:
            (folder / "model.pt").write_bytes(b"weights")
    plan = tmp_path / "plan.txt"
    plan.write_text("".join(f"{folder}\n" for folder in folders))
    train = tmp_path / "benchmarks" / "train"
    train.mkdir(parents=True)
    for i, seconds in enumerate(timed):
        row = f"{seconds}\t0:01:00\t500\t1\t1\t1\t0\t0\t90\t{seconds}\n"
        (train / f"run{i}.tsv").write_text(BENCHMARK_HEADER + row)
    return plan, tmp_path / "benchmarks"


def test_the_time_left_is_the_remaining_runs_in_batches_times_the_median_run(tmp_path):
    """1 of 4 done, runs of 60 and 100 s (median 80), 2 at a time: 3 left = 2 batches = 160 s, ending at 00:02:40."""
    plan, benchmarks = _grid(tmp_path, finished=1, timed=[60.0, 100.0])
    line = progress_line(plan, benchmarks, parallel=2, now=0.0)
    assert line == "progress: 1 of 4 runs trained; median 80 s a run, 2 at a time: about 3 min left (until 00:02 UTC)"


def test_no_estimate_before_a_run_is_timed_and_none_left_at_the_end(tmp_path):
    plan, benchmarks = _grid(tmp_path, finished=0, timed=[])
    assert progress_line(plan, benchmarks, parallel=1).endswith("0 of 4 runs trained; no run timed yet, so no estimate")
    done_plan, done_benchmarks = _grid(tmp_path / "done", finished=4, timed=[50.0])
    assert progress_line(done_plan, done_benchmarks, parallel=1) == "progress: 4 of 4 runs trained; none left"


def test_the_cli_prints_the_line(tmp_path):
    plan, benchmarks = _grid(tmp_path, finished=2, timed=[30.0, 30.0, 90.0])
    result = CliRunner().invoke(cli, ["progress", "--plan", str(plan), "--benchmarks", str(benchmarks)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("progress: 2 of 4 runs trained; median 30 s a run, 1 at a time: about 60 s left")

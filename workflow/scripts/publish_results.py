"""Replace the committed results (results/committed) with the small files of a finished default-grid root.

Maintainers only, and only on request (``make publish``): the pipeline itself never writes the committed
tree. Refuses, before touching anything, unless every configured run finished in the source root itself
(not read from the cache), none is missing, and every run was trained by one clean commit; ``--report-only``
copies just the summary and tables (after ``make figures``, when only the report code changed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

SMALL = ("*.csv", "*.yaml", "*.md", "*.tex", "*.txt", "DIVERGED")
MARKER = ".read-only"


def _small_files(root: Path, folders: tuple[str, ...]) -> list[Path]:
    files = {p for folder in folders for pattern in SMALL for p in (root / folder).rglob(pattern) if p.is_file()}
    return sorted(p.relative_to(root) for p in files)


def _problems(source: Path, report_only: bool) -> list[str]:
    summary = source / "summary" / "runs.csv"
    if not summary.is_file():
        return [f"{summary} does not exist: run `make run` (or `make figures` for --report-only) first"]
    missing = (source / "summary" / "missing_runs.txt").read_text().split()
    if missing:
        return [f"{len(missing)} runs did not finish (first: {missing[0]}); nothing published"]
    if report_only:
        return []
    runs = pd.read_csv(summary)
    finished = list((source / "runs").glob("*/*/*/seed*/eval.csv"))
    expected = runs[["dataset", "model", "run", "seed"]].drop_duplicates()
    if len(finished) != len(expected):
        return [
            f"{source}/runs holds {len(finished)} finished runs but the summary has {len(expected)}: "
            "some were read from the cache; run `make run` (no cache) first"
        ]
    commits = set(runs["code_commit"].fillna("").astype(str))
    dirty = runs["code_dirty"].astype(str).str.lower().isin(["true", "1"]).any()
    if len(commits) != 1 or "" in commits or dirty:
        return [
            f"the runs were trained by commits {sorted(commits)} (dirty: {bool(dirty)}): train from one clean commit"
        ]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="results", type=Path)
    parser.add_argument("--dest", default="results/committed", type=Path)
    parser.add_argument("--report-only", action="store_true", help="copy only summary/ and tables/")
    args = parser.parse_args()
    problems = _problems(args.source, args.report_only)
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    folders = ("summary", "tables") if args.report_only else ("runs", "partitions", "summary", "tables")
    staging = args.dest.with_name(args.dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    if args.report_only:
        shutil.copytree(args.dest, staging)
    else:
        staging.mkdir(parents=True)
    for folder in folders:
        shutil.rmtree(staging / folder, ignore_errors=True)
    for relative in _small_files(args.source, folders):
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.source / relative, staging / relative)
    shutil.copyfile(args.dest / MARKER, staging / MARKER)
    old = args.dest.with_name(args.dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    args.dest.rename(old)
    staging.rename(args.dest)
    shutil.rmtree(old)
    print(f"{args.dest}: {len(_small_files(args.dest, folders))} files from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

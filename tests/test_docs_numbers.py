"""The measured pages in docs/ quote numbers only from the files the pipeline wrote, and name how to regenerate.

A page that quotes a result keeps the tables it read beside it (or in the committed results), so a number in
the prose that is in none of them is stale or mistyped. Results are quoted with two decimals; every such number
on a page must equal (to the hundredth) a value in the page's sources, read as numbers from their Markdown
tables and CSV cells. Numbers that are inputs rather than results (a learning rate, a model's MAC count from
its source) are listed per page with the reason. README.md is checked for its numbers only: it is no measured
page and names no regeneration command.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*\.\d+(?![\d])")
QUOTED = re.compile(r"(?<![\w.])[-+]?\d[\d,]*\.\d\d(?![\d.])")
PAGES = {
    "docs/default-grid.md": (["results/committed/tables", "results/committed/summary/runs.csv"], {}),
    "docs/methods-comparison.md": (
        ["docs/methods"],
        {
            "0.05": "the grid's learning rate (config/methods.yaml)",
            "4.30": "Student's t quantile (97.5 %, 2 degrees of freedom) behind the intervals",
            "73.75": "FIARSE's published CIFAR-10 accuracy",
            "66.05": "HeteroFL's accuracy in FIARSE's published table",
            "7.70": "the difference of those two published numbers",
            "76.06": "DepthFL's published CIFAR-100 accuracy",
            "57.61": "HeteroFL's accuracy in DepthFL's published comparison",
            "72.67": "DepthFL (FedAvg)'s published CIFAR-100 accuracy (DepthFL without FedDyn)",
        },
    ),
    "docs/system-heterogeneity.md": (
        ["docs/fleets"],
        {
            "0.05": "the grid's learning rate (config/fleets.yaml)",
            "17.21": "the FEMNIST CNN's forward MACs (M), computed on the page from the cited architecture",
        },
    ),
    "docs/performance.md": (
        [
            "benchmarks/round_speed_summary.csv",
            "benchmarks/round_speed_methods_summary.csv",
            "benchmarks/round_speed_previous_summary.csv",
            "benchmarks/heterofl_round.csv",
            "benchmarks/round_speed_precision_cpu.csv",
            "benchmarks/precision_accuracy.csv",
            "benchmarks/precision_accuracy_summary.csv",
            "benchmarks/gpu/README.md",
        ],
        {"2.14": "the torch version whose vmapped BatchNorm backward fails under autocast"},
    ),
}
NUMBERS_ONLY = {
    "README.md": (
        ["benchmarks/gpu/README.md", "benchmarks/guard_overhead.csv"],
        {
            "3.11": "the Python version of the install instructions",
            "0.05": "a learning rate in a command-line example",
            "0.01": "the reference's MNIST learning rate",
        },
    ),
}


def _values(path: Path) -> set[float]:
    """Every number in a source file, rounded to the hundredth (CSV cells and Markdown text alike)."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".md", ".csv")) if path.is_dir() else [path]
    values: set[float] = set()
    for file in files:
        if file.suffix == ".csv":
            frame = pd.read_csv(file)
            for column in frame.columns:
                numeric = pd.to_numeric(frame[column], errors="coerce").dropna()
                values |= {round(float(v), 2) for v in numeric}
        values |= {round(float(n.replace(",", "")), 2) for n in NUMBER.findall(file.read_text())}
    return values


@pytest.mark.parametrize("page", sorted({**PAGES, **NUMBERS_ONLY}))
def test_every_two_decimal_number_on_a_measured_page_is_in_its_sources(page: str) -> None:
    sources, inputs = {**PAGES, **NUMBERS_ONLY}[page]
    known = set().union(*(_values(ROOT / source) for source in sources))
    quoted = QUOTED.findall((ROOT / page).read_text())
    stale = sorted({n for n in quoted if n.lstrip("+") not in inputs and round(float(n), 2) not in known})
    assert quoted and not stale, f"{page} quotes numbers found in none of {sources}: {stale}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_measured_page_names_the_command_that_regenerates_it_at_the_top(page: str) -> None:
    top = "\n".join((ROOT / page).read_text().splitlines()[:12])
    assert re.search(r"`(snakemake|make|python) [^`]+`", top), f"{page}: no regeneration command in its first lines"

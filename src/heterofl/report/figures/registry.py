"""The figure table: every figure of the report declares here its file stem, what it is drawn per, its caption,
the report's subcategory and its drawing function, and nothing else needs to learn of it.

``index.md`` (:func:`heterofl.report.figure_caption`), the Snakemake report's captions and subcategories
(:mod:`heterofl.report.kinds`, read by ``workflow/rules/common.smk`` and the ``.rst`` templates) and
:func:`heterofl.report.figures.draw_figures` read this table. Torch- and matplotlib-free, so that the
workflow can import it while planning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

Per = Literal["dataset", "split", "partition"]


@dataclass(frozen=True)
class FigureInputs:
    """What a drawing function may read: the summary (HeteroFL rows, diverged runs removed), the tables by stem,
    the per-run value (``final``, ``best`` or ``mean_last_k``)."""

    runs: pd.DataFrame
    history: pd.DataFrame
    value: str
    cost: pd.DataFrame | None = None
    tables: dict = field(default_factory=dict)
    clock_curves: pd.DataFrame | None = None
    """Runs on the simulated clock, every method: fleet, setup, seed, round, simulated minutes, global metric."""


@dataclass(frozen=True)
class FigureSpec:
    """One figure. ``per``: one file per dataset (``{stem}_{D}``), per dataset and split (``{stem}_{D}_{S}``), or
    per partition (drawn by its own rule, not by :func:`~heterofl.report.figures.draw_figures`). ``draw`` is
    ``"module:function"`` with the signature ``(inputs, dataset, split, folder) -> list[Path]``; ``description``
    is the paragraph of the Snakemake report (``{name}``: the file stem)."""

    stem: str
    per: Per
    category: str
    caption: str
    description: str
    draw: str | None

    def file_stem(self, dataset: str, split: str | None = None) -> str:
        return f"{self.stem}_{dataset}" if self.per == "dataset" else f"{self.stem}_{dataset}_{split}"


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        stem="interpolation",
        per="dataset",
        category="Interpolation",
        caption="global metric as the share of the larger rate falls, per interpolation pair and split",
        description=(
            "Interpolation (``{name}``): global accuracy (perplexity for WikiText2) as the share of clients at the"
            " larger rate X falls from 100 % to 0 % (top), and against the clients' average parameters (bottom); one"
            " line per pair X-Y, one column per split. A flat line means that narrow clients cost the global model"
            " little."
        ),
        draw="heterofl.report.figures.interpolation:draw",
    ),
    FigureSpec(
        stem="pareto",
        per="dataset",
        category="Accuracy against cost",
        caption="global metric against parameters and FLOPs per client; the Pareto front marked",
        description=(
            "Accuracy against cost (``{name}``): every configuration's global metric against the clients' average"
            " parameters (left) and FLOPs per client (right). The dashed step line is the Pareto front: the"
            " configurations no other beats at equal or lower cost, named on the plot."
        ),
        draw="heterofl.report.figures.pareto:draw",
    ),
    FigureSpec(
        stem="rates_heatmap",
        per="split",
        category="Global model at every rate",
        caption="the final global model evaluated at every rate, per configuration",
        description=(
            "The final global model evaluated at every rate a..e (``{name}``): one row per configuration, one column"
            " per rate, the value written in each cell. Read along a row how much accuracy each narrower slice of the"
            " global model keeps; grey cells are rates above the configuration's global rate."
        ),
        draw="heterofl.report.figures.rates_heatmap:draw",
    ),
    FigureSpec(
        stem="learning_curves",
        per="split",
        category="Learning curves",
        caption="global metric at every evaluation, by family (single rates, combinations, interpolations)",
        description=(
            "Learning curves (``{name}``): the global model's metric at every evaluation against the communication"
            " round, one panel per family (single rates, combinations, interpolations), with a band of ± one standard"
            " deviation where several seeds ran. Read whether a configuration has converged and how mixes compare"
            " with the single rates over training."
        ),
        draw="heterofl.report.figures.learning_curves:draw",
    ),
    FigureSpec(
        stem="cost_curves",
        per="split",
        category="Communication and compute",
        caption="global metric against cumulative communication (MB) and client compute (MACs)",
        description=(
            "Communication and compute (``{name}``): the global metric at each evaluation against the cumulative"
            " bytes sent to and from clients (top) and the cumulative client training MACs (bottom). Curves further"
            " left reach an accuracy with less communication or compute."
        ),
        draw="heterofl.report.figures.cost_curves:draw",
    ),
    FigureSpec(
        stem="methods",
        per="split",
        category="Methods",
        caption="methods compared at every evaluated rate",
        description=(
            "Methods compared (``{name}``): the global metric against the evaluated rate, one panel per"
            " configuration, one line per method, error bars of one standard deviation over seeds. Read which method"
            " keeps the most accuracy at the narrow rates."
        ),
        draw="heterofl.report.figures.methods:draw",
    ),
    FigureSpec(
        stem="time_curves",
        per="split",
        category="Simulated clock",
        caption="global metric against simulated time, per device fleet and setup (runs with a fleet)",
        description=(
            "Accuracy against simulated time (``{name}``): the global model's metric at every evaluation against"
            " the simulated minutes its run had spent by then (clients' download, training and upload on their"
            " devices; the server's static BN and evaluation not included), one panel per device fleet, one line"
            " per setup (mean over seeds, band of ± one standard deviation). Curves further left reach an accuracy"
            " sooner on those devices."
        ),
        draw="heterofl.report.figures.time_curves:draw",
    ),
    FigureSpec(
        stem="partition",
        per="partition",
        category="Partitions",
        caption="training samples per client and label of a partition",
        description="Training samples per client (rows) and label (columns) of the partition ``{name}``.",
        draw=None,  # drawn by `heterofl heatmap` from the partition's statistics (rule partition_heatmap)
    ),
)


def figure_spec_of(file_stem: str) -> FigureSpec | None:
    """The figure a file stem belongs to (the longest matching ``{stem}_`` prefix), or ``None``."""
    matches = [spec for spec in FIGURES if file_stem.startswith(f"{spec.stem}_")]
    return max(matches, key=lambda spec: len(spec.stem)) if matches else None

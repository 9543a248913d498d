"""``cost_curves_{D}_{S}``: the global metric against cumulative communication (bytes) and cumulative client
training compute (MACs), from ``summary/cost.csv``; not drawn without it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import (
    FAMILIES,
    KEYS,
    column_legends,
    draw_family,
    engineering_axis,
    figure_style,
    finish,
    global_curves,
    hide_sparse,
    metric_label,
    seed_band,
    seed_note,
    skipped,
)
from heterofl.report.seed_stats import (
    global_metric,
    metric_word,
)


def cost_curves_plot(runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame, dataset: str, split: str):
    """Global metric at each evaluation against the cumulative bytes to and from clients (top row) and the
    cumulative client training MACs (bottom row) up to that round; one panel per family, shared axes per row."""
    curves, styles = global_curves(runs, history, dataset, split)
    if curves.empty or cost is None or cost.empty:
        return None
    curves = curves[curves["metric"] == global_metric(dataset)]
    spent = cost[cost["dataset"] == dataset].sort_values([*KEYS, "round"])
    rounds = spent.groupby(KEYS)["round"].agg(["min", "max", "count"])
    whole = rounds[(rounds["min"] == 1) & (rounds["count"] == rounds["max"])].index  # every round 1..last counted
    spent = spent[pd.MultiIndex.from_frame(spent[KEYS]).isin(whole)]
    if spent.empty:
        return None
    spent = spent.assign(moved=spent["bytes_to_clients"] + spent["bytes_from_clients"])
    per_run = spent.groupby(KEYS, sort=False)
    spent = spent.assign(communication=per_run["moved"].cumsum(), compute=per_run["client_train_macs"].cumsum())
    joined = curves.merge(spent[[*KEYS, "round", "communication", "compute"]], on=[*KEYS, "round"])
    if joined.empty:
        return None
    by = ["family", "label", "round"]
    stats = seed_band(joined, by).merge(joined.groupby(by)[["communication", "compute"]].mean().reset_index(), on=by)
    axes_spec = (
        ("communication", "B", "Cumulative communication to and from clients"),
        ("compute", "MAC", "Cumulative client training compute"),
    )
    families = [f for f in FAMILIES if f in set(stats["family"])]
    with figure_style():
        fig, axes = plt.subplots(
            2, len(families), figsize=(4.6 * len(families) + 0.4, 7.6), sharex="row", sharey=True, squeeze=False,
            layout="constrained",
        )  # fmt: skip
        for r, (column, unit, xlabel) in enumerate(axes_spec):
            logarithmic = bool((stats[column] > 0).all())  # costs span decades: a at 240 times e
            for c, name in enumerate(families):
                ax = axes[r][c]
                part = stats[stats["family"] == name]
                draw_family(ax, part, styles, column)
                if r == 0:
                    ax.set_title(name, fontsize=10)
                if logarithmic:
                    ax.set_xscale("log")
                engineering_axis(ax, "x", unit)
                ax.set_xlabel(f"{xlabel}{' (log)' if logarithmic else ''}")
                ax.set_ylabel(metric_label("Global", dataset) if c == 0 else "")
        hide_sparse(axes)
        if not any(ax.get_visible() for ax in axes.flat):
            plt.close(fig)
            return None
        column_legends(axes)
        fig.suptitle(f"{dataset} {split}: global {metric_word(dataset).lower()} against communication and client "
                     f"compute ({seed_note(stats['count'])})")  # fmt: skip
    return fig


def cost_curves_figure(
    runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame | None, dataset: str, split: str, folder: Path
) -> list[Path]:
    """``cost_curves_{D}_{S}``; nothing (a log line) without cost rows for the split's evaluated rounds."""
    stem = f"cost_curves_{dataset}_{split}"
    if cost is None or cost.empty:
        return skipped(stem, "no cost data (summary/cost.csv)")
    fig = cost_curves_plot(runs, history, cost, dataset, split)
    return skipped(stem, "no cost rows at evaluated rounds") if fig is None else finish(fig, folder, stem)


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry."""
    return cost_curves_figure(inputs.runs, inputs.history, inputs.cost, dataset, split, folder)

"""``learning_curves_{D}_{S}``: the global model's metric against the communication round, one panel per family
(single rates, combinations, interpolations), a marker at every evaluation, a mean ± sd band over seeds; with one
evaluation per run, that evaluation per configuration as a point plot.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import (
    FAMILIES,
    FAMILY_COLORS,
    FAMILY_MARKERS,
    KEYS,
    column_legends,
    draw_family,
    family_grid,
    figure_style,
    finish,
    global_curves,
    hide_sparse,
    metric_kinds,
    metric_label,
    ordered_labels,
    round_ticks,
    seed_band,
    seed_note,
    skipped,
)


def learning_curves_plot(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str):
    """Metric vs round, one panel per family (columns) and metric kind (rows, local on non-IID splits), mean ±
    sd band over seeds; with one evaluation per run :func:`single_evaluation_plot` instead."""
    curves, styles = global_curves(runs, history, dataset, split)
    if curves.empty:
        return None
    if curves.groupby("label")["round"].nunique().max() < 2:
        return single_evaluation_plot(curves, dataset, split)
    rows = []
    for kind, metric in metric_kinds(dataset, split):
        part = curves[curves["metric"] == metric]
        if not part.empty:
            rows.append((kind, seed_band(part, ["family", "label", "round"])))
    families = [f for f in FAMILIES if any(f in set(s["family"]) for _, s in rows)]
    if not rows:
        return None
    with figure_style():
        fig, axes = family_grid(rows, families, 4.6, 3.2)
        for r, (kind, stats) in enumerate(rows):
            for c, kind_of_run in enumerate(families):
                ax = axes[r][c]
                part = stats[stats["family"] == kind_of_run]
                draw_family(ax, part, styles, "round")
                if r == 0:
                    ax.set_title(kind_of_run, fontsize=10)
                ax.set_xlabel("Communication round")
                round_ticks(ax, stats["round"])
                ax.set_ylabel(metric_label(kind, dataset) if c == 0 else "")
        hide_sparse(axes)
        if not any(ax.get_visible() for ax in axes.flat):
            plt.close(fig)
            return single_evaluation_plot(curves, dataset, split)
        column_legends(axes)
        counts = pd.concat([s["count"] for _, s in rows])
        fig.suptitle(f"{dataset} {split}: learning curves of the global model ({seed_note(counts)})")
    return fig


def single_evaluation_plot(curves: pd.DataFrame, dataset: str, split: str):
    """One evaluation per run: that evaluation per configuration (x), marked by family; ``None`` with fewer than
    two configurations."""
    last = curves.sort_values("round").groupby([*KEYS, "metric"], sort=False).tail(1)
    if last["label"].nunique() < 2:
        return None
    rounds = sorted(last["round"].unique())
    when = f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {rounds[0]}-{rounds[-1]}"
    kinds = [(k, m) for k, m in metric_kinds(dataset, split) if (last["metric"] == m).any()]
    with figure_style():
        fig, axes = plt.subplots(
            1, len(kinds), figsize=(max(5.0, 0.45 * last["label"].nunique() + 2.0) * len(kinds), 4.0),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for ax, (kind, metric) in zip(axes[0], kinds, strict=True):
            stats = seed_band(last[last["metric"] == metric], ["family", "label"])
            order = ordered_labels(stats)
            stats = stats.set_index("label").loc[order].reset_index()
            for name in FAMILIES:
                part = stats[stats["family"] == name]
                if part.empty:
                    continue
                errors = part["std"].fillna(0.0) if (part["count"] > 1).any() else None
                ax.errorbar(
                    part.index, part["mean"], yerr=errors, color=FAMILY_COLORS[name], marker=FAMILY_MARKERS[name],
                    linestyle="none", markersize=6, capsize=2.5, label=name,
                )  # fmt: skip
            ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
            ax.set_xlabel("Configuration (model mode)")
            ax.set_ylabel(metric_label(kind, dataset))
            ax.legend(fontsize=8, title="family", title_fontsize=8)
        fig.suptitle(f"{dataset} {split}: one evaluation per run ({when}), every configuration")
    return fig


def learning_curves_figure(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str, folder: Path):
    """``learning_curves_{D}_{S}``; nothing (a log line) without two points to draw."""
    stem = f"learning_curves_{dataset}_{split}"
    fig = learning_curves_plot(runs, history, dataset, split)
    return skipped(stem, "no history with two points") if fig is None else finish(fig, folder, stem)


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry."""
    return learning_curves_figure(inputs.runs, inputs.history, dataset, split, folder)

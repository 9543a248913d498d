"""``pareto_{D}``: every configuration's metric against proportion-weighted parameters and FLOPs per client, one
row per split (and local metric), the Pareto front drawn and its configurations named.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import (
    FAMILIES,
    FAMILY_COLORS,
    FAMILY_MARKERS,
    KEYS,
    VALUE_WORDS,
    engineering_axis,
    figure_style,
    finish,
    metric_kinds,
    metric_label,
    paper_configs,
    seed_note,
    skipped,
)
from heterofl.report.seed_stats import (
    is_language,
    metric_word,
    mode_cost,
)


def pareto_front(x: list[float], y: list[float], higher_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats: none with at most its cost has a better value."""
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(x)), key=lambda i: (x[i], -sign * y[i]))
    front, best = [], -np.inf
    for i in order:
        if sign * y[i] > best:
            front.append(i)
            best = sign * y[i]
    return front


def final_stats(runs: pd.DataFrame, value: str, dataset: str, split: str, metric: str) -> pd.DataFrame:
    """Per configuration: mean, sd and seeds of ``value`` of its global model, with proportion-weighted cost."""
    configs = paper_configs(runs, dataset, split)
    data = runs[runs["metric"] == metric].merge(configs[[*KEYS, "label", "family", "order"]], on=KEYS)
    data = data[data["letter"] == data["global_letter"]]
    if data.empty:
        return pd.DataFrame()
    stats = data.groupby(["family", "label"])[value].agg(["mean", "std", "count"]).reset_index()
    first = data.drop_duplicates("label").set_index("label")
    costs = [
        mode_cost(first.at[x, "model"], first.at[x, "resnet_blocks"], first.at[x, "model_mode"], dataset)
        for x in stats["label"]
    ]
    return stats.assign(
        params=[c["params"] for c in costs],
        flops=[c["flops_reference"] for c in costs],
        order=[first.at[x, "order"] for x in stats["label"]],
    )


def pareto_plot(runs: pd.DataFrame, value: str, dataset: str):
    """Each configuration's metric against its proportion-weighted parameters (left) and FLOPs per client
    (right), one row per split and metric kind; the Pareto front as a dashed step line, its points named."""
    rows = []
    splits = sorted(runs.loc[runs["dataset"] == dataset, "data_split_mode"].unique())
    for split in splits:
        for kind, metric in metric_kinds(dataset, split):
            stats = final_stats(runs, value, dataset, split, metric)
            if len(stats) >= 2:
                rows.append((split, kind, stats))
    if not rows:
        return None
    higher = not is_language(dataset)
    with figure_style():
        fig, axes = plt.subplots(
            len(rows), 2, figsize=(10.5, 3.5 * len(rows) + 0.8), sharey="row", squeeze=False, layout="constrained"
        )
        for r, (split, kind, stats) in enumerate(rows):
            for c, (column, xlabel) in enumerate(
                (("params", "Parameters per client"), ("flops", "FLOPs per client and sample (paper's count)"))
            ):
                ax = axes[r][c]
                several = (stats["count"] > 1).any()
                for name in FAMILIES:
                    part = stats[stats["family"] == name]
                    if part.empty:
                        continue
                    ax.errorbar(
                        part[column], part["mean"], yerr=part["std"].fillna(0.0) if several else None,
                        color=FAMILY_COLORS[name], marker=FAMILY_MARKERS[name], linestyle="none", markersize=6,
                        capsize=2.5, alpha=0.9, label=name, zorder=3,
                    )  # fmt: skip
                front = stats.iloc[pareto_front(stats[column].tolist(), stats["mean"].tolist(), higher)]
                ax.plot(
                    front[column], front["mean"], color="black", linestyle="--", linewidth=1.0, drawstyle="steps-post",
                    marker="o", markersize=11, markerfacecolor="none", markeredgewidth=1.0, label="Pareto front",
                    zorder=2,
                )  # fmt: skip
                for x, y, label in zip(front[column], front["mean"], front["label"], strict=True):
                    # no point is cheaper and better than a front point: the label goes there, clear of the step
                    ax.annotate(
                        label, (x, y), xytext=(-5, 5 if higher else -5), textcoords="offset points", fontsize=7,
                        ha="right", va="bottom" if higher else "top",
                    )  # fmt: skip
                ax.set_xscale("log")
                engineering_axis(ax, "x")
                ax.set_xlabel(f"{xlabel}, proportion-weighted (log)")
                ax.set_ylabel(metric_label(kind, dataset) if c == 0 else "")
                ax.set_title(f"{split}: {kind.lower()} {metric_word(dataset).lower()}", fontsize=10)
        handles, labels = [], []
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
        counts = pd.concat([s["count"] for _, _, s in rows])
        fig.suptitle(f"{dataset}: {metric_word(dataset).lower()} against client cost, every configuration "
                     f"({VALUE_WORDS.get(value, value)}, {seed_note(counts)})")  # fmt: skip
    return fig


def pareto_figure(runs: pd.DataFrame, value: str, dataset: str, folder: Path) -> list[Path]:
    """``pareto_{D}``; nothing (a log line) where no split has two configurations."""
    stem = f"pareto_{dataset}"
    fig = pareto_plot(runs, value, dataset)
    return skipped(stem, "fewer than two configurations per split") if fig is None else finish(fig, folder, stem)


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry: every split of ``dataset`` in one figure."""
    return pareto_figure(inputs.runs, inputs.value, dataset, folder)

"""``rates_heatmap_{D}_{S}``: the final global model evaluated at every rate a..e (columns), per configuration
(rows), annotated with the value (and ± sd over seeds).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from heterofl.rates import RATE_OF_LETTER
from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import (
    FAMILIES,
    HEATMAP_CMAP,
    KEYS,
    VALUE_WORDS,
    finish,
    metric_label,
    ordered_labels,
    paper_configs,
    skipped,
)
from heterofl.report.seed_stats import (
    LETTERS,
    global_metric,
    is_language,
)


def rates_heatmap_plot(runs: pd.DataFrame, value: str, dataset: str, split: str):
    """Configurations (rows) x evaluated rate of the final global model (columns), annotated; blank (grey) where
    a rate is above the configuration's global rate and was not evaluated."""
    configs = paper_configs(runs, dataset, split)
    metric = global_metric(dataset)
    data = runs[runs["metric"] == metric].merge(configs[[*KEYS, "label", "order"]], on=KEYS)
    if data.empty:
        return None
    stats = data.groupby(["label", "letter"])[value].agg(["mean", "std", "count"]).reset_index()
    rows = ordered_labels(data)
    letters = [x for x in LETTERS if x in set(stats["letter"])]
    mean = stats.pivot(index="label", columns="letter", values="mean").reindex(index=rows, columns=letters)
    std = stats.pivot(index="label", columns="letter", values="std").reindex(index=rows, columns=letters)
    count = stats.pivot(index="label", columns="letter", values="count").reindex(index=rows, columns=letters)
    if int(mean.notna().to_numpy().sum()) < 2:
        return None
    text = np.full(mean.shape, "", dtype=object)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            m, s, c = mean.iat[i, j], std.iat[i, j], count.iat[i, j]
            if pd.notna(m):
                text[i, j] = f"{m:.1f}" + (f"\n± {s:.1f}" if pd.notna(c) and c > 1 and pd.notna(s) else "")
    several = bool((count.fillna(0) > 1).to_numpy().any())
    families = data.drop_duplicates("label").set_index("label").loc[rows, "order"].map(lambda o: FAMILIES[o[0]])
    with sns.axes_style("white"):
        fig, ax = plt.subplots(
            figsize=(1.0 * len(letters) + 3.4, (0.5 if several else 0.36) * len(rows) + 1.9), layout="constrained"
        )
        ax.set_facecolor("0.93")
        cmap = HEATMAP_CMAP + ("_r" if is_language(dataset) else "")
        scale = {} if is_language(dataset) else {"vmin": 0.0, "vmax": 100.0}  # one colour scale for every split
        sns.heatmap(
            mean.astype(float), mask=mean.isna(), annot=text, fmt="", cmap=cmap, linewidths=0.6, linecolor="white",
            annot_kws={"fontsize": 7 if several else 8},
            cbar_kws={"label": metric_label("Global", dataset), "pad": 0.06}, ax=ax, **scale,
        )  # fmt: skip
        boundaries = [i for i in range(1, len(rows)) if families.iloc[i] != families.iloc[i - 1]]
        for y in boundaries:
            ax.axhline(y, color="black", linewidth=1.2)
        starts = [0, *boundaries]
        ends = [*boundaries, len(rows)]
        for start, end in zip(starts, ends, strict=True):
            ax.annotate(
                families.iloc[start], xy=(1.0, 1 - (start + end) / 2 / len(rows)), xycoords="axes fraction",
                xytext=(4, 0), textcoords="offset points", rotation=-90, va="center", ha="left", fontsize=8,
            )  # fmt: skip
        ax.set_xticks(np.arange(len(letters)) + 0.5, [f"{x}\n×{RATE_OF_LETTER[x]:g}" for x in letters], rotation=0)
        ax.set_yticks(np.arange(len(rows)) + 0.5, rows, rotation=0)
        ax.set_xlabel("Evaluated rate of the global model (width multiplier)")
        ax.set_ylabel("Configuration (model mode)")
        seeds = "mean ± sd over seeds" if several else "one seed"
        ax.set_title(
            f"{dataset} {split}: global model at every rate\n({VALUE_WORDS.get(value, value)}, {seeds}; grey: not "
            "evaluated)",
            fontsize=10,
        )
    return fig


def rates_heatmap_figure(runs: pd.DataFrame, value: str, dataset: str, split: str, folder: Path) -> list[Path]:
    """``rates_heatmap_{D}_{S}``; nothing (a log line) with fewer than two evaluated cells."""
    stem = f"rates_heatmap_{dataset}_{split}"
    fig = rates_heatmap_plot(runs, value, dataset, split)
    return skipped(stem, "fewer than two evaluated rates") if fig is None else finish(fig, folder, stem)


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry."""
    return rates_heatmap_figure(inputs.runs, inputs.value, dataset, split, folder)

"""``interpolation_{D}``: fix-mode mixes ``X{i}-Y{10-i}`` with their endpoints; the metric against the share of
clients at the larger rate X (top row) and against the proportion-weighted parameters (bottom row); one column
per split (and per local metric on non-IID splits), one marked line per interpolated pair.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import (
    PALETTE,
    SERIES_MARKERS,
    engineering_axis,
    figure_style,
    finish,
    metric_kinds,
    metric_label,
    seed_note,
    skipped,
)
from heterofl.report.seed_stats import (
    letter_order,
    metric_word,
)
from heterofl.report.tables import Table


def interpolation_plot(tables: dict[str, Table], dataset: str):
    """Interpolation tables (split -> :func:`heterofl.report.tables.interpolation_table`) in one figure: per
    split (and local metric) a column, share of X on top, proportion-weighted parameters below; pairs with fewer
    than two points (the lone ``e`` endpoint) are left out."""
    columns = []
    for split in sorted(s for s, table in tables.items() if table is not None):
        raw = tables[split].raw
        for kind, _ in metric_kinds(dataset, split):
            column = kind.lower()
            frame = raw.dropna(subset=[f"{column}_mean"])
            sizes = frame.groupby("pair")["share_x"].nunique()
            frame = frame[frame["pair"].isin(sizes[sizes >= 2].index)]
            if not frame.empty:
                columns.append((split, kind, frame))
    if not columns:
        return None
    pairs = sorted(
        {p for _, _, f in columns for p in f["pair"]}, key=lambda p: tuple(letter_order(x) for x in p.split("-"))
    )
    style = {p: (PALETTE[i % len(PALETTE)], SERIES_MARKERS[i % len(SERIES_MARKERS)]) for i, p in enumerate(pairs)}
    seeds = pd.concat([f[f"{kind.lower()}_n"] for _, kind, f in columns])
    with figure_style():
        fig, axes = plt.subplots(
            2, len(columns), figsize=(4.0 * len(columns) + 0.6, 6.6), sharey="col", squeeze=False, layout="constrained"
        )
        for col, (split, kind, frame) in enumerate(columns):
            mean, std, n = (f"{kind.lower()}_{s}" for s in ("mean", "std", "n"))
            for row in (0, 1):
                ax = axes[row][col]
                for pair in [p for p in pairs if p in set(frame["pair"])]:
                    points = frame[frame["pair"] == pair].sort_values("share_x")
                    x = points["share_x"] * 100 if row == 0 else points["params"]
                    errors = points[std].where(points[n] > 1).fillna(0.0) if (points[n] > 1).any() else None
                    color, marker = style[pair]
                    ax.errorbar(
                        x, points[mean], yerr=errors, color=color, marker=marker, markersize=5.5, linewidth=1.5,
                        capsize=2.5, label=pair,
                    )  # fmt: skip
                if row == 0:
                    ax.set_title(f"{split}: {kind.lower()} {metric_word(dataset).lower()}", fontsize=10)
                    ax.set_xlabel("Clients at the larger rate X (%)")
                    ax.set_xticks(range(0, 101, 20))
                else:
                    ax.set_xscale("log")
                    engineering_axis(ax, "x")
                    ax.set_xlabel("Parameters per client (proportion-weighted, log)")
                ax.set_ylabel(metric_label(kind, dataset))
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        fig.legend(
            handles, labels, loc="outside lower center", ncol=min(len(labels), 6), frameon=False,
            title="Pair X-Y (fix mode; X1-Y9 puts 10 % of the clients at rate X)",
        )  # fmt: skip
        fig.suptitle(f"{dataset}: interpolation between a larger rate X and a smaller rate Y ({seed_note(seeds)})")
    return fig


def interpolation_figure(tables: dict[str, Table], dataset: str, folder: Path) -> list[Path]:
    """``interpolation_{D}``; nothing (a log line) where no pair has two points."""
    stem = f"interpolation_{dataset}"
    fig = interpolation_plot(tables, dataset)
    return skipped(stem, "no interpolation pair with two points") if fig is None else finish(fig, folder, stem)


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry: the interpolation tables of every split of ``dataset``."""
    splits = sorted(inputs.runs.loc[inputs.runs["dataset"] == dataset, "data_split_mode"].unique())
    tables = {
        s: inputs.tables[f"interpolation_{dataset}_{s}"]
        for s in splits
        if f"interpolation_{dataset}_{s}" in inputs.tables
    }
    if not tables:
        return skipped(f"interpolation_{dataset}", "no interpolation table")
    return interpolation_figure(tables, dataset, folder)

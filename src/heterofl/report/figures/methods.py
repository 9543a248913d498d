"""``methods_{D}_{S}``: the method comparison of :func:`heterofl.report.methods.method_tables`, one panel per
configuration, one line per method in the colour and marker its :class:`heterofl.methods.registry.MethodSpec`
declares; under each, the methods' full model (the global rate) alone, on an axis fitted to those values.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from heterofl.methods.registry import METHODS, OKABE_ITO
from heterofl.report.figures.registry import FigureInputs
from heterofl.report.output import save_figure
from heterofl.report.seed_stats import (
    LETTERS,
    global_metric,
    letter_order,
)
from heterofl.report.tables import Table


def panel_grid(count: int, width: float, height: float, zoom_height: float = 0.0):
    """At most three panels per row; unused axes are hidden. With ``zoom_height``, each panel has a second,
    shorter one under it (returned as a second list), for the full model's values on their own scale."""
    cols = min(3, count)
    rows = -(-count // cols)
    if not zoom_height:
        fig, grid = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
        axes = list(grid.flat)
        for ax in axes[count:]:
            ax.set_visible(False)
        return fig, axes[:count]
    fig, grid = plt.subplots(
        2 * rows, cols, figsize=(width * cols, (height + zoom_height) * rows), squeeze=False,
        gridspec_kw={"height_ratios": [height, zoom_height] * rows},
    )  # fmt: skip
    main = [grid[2 * (k // cols)][k % cols] for k in range(rows * cols)]
    zoom = [grid[2 * (k // cols) + 1][k % cols] for k in range(rows * cols)]
    for ax in main[count:] + zoom[count:]:
        ax.set_visible(False)
    return fig, main[:count], zoom[:count]


def full_model_panel(ax, part: pd.DataFrame, present: list[str], colors: dict[str, str]) -> None:
    """Every method's global model at its own (largest) rate, mean ± std, on an axis fitted to those values: the
    one like-for-like comparison, which the rates panel's wide range (a few % to 90 %) squeezes flat."""
    full = part[part["letter"] == part["global_letter"]].set_index("label")
    shown = [label for label in present if label in full.index]
    for y, label in enumerate(shown):
        ax.errorbar(
            full.at[label, "mean"], y, xerr=0.0 if pd.isna(full.at[label, "std"]) else full.at[label, "std"],
            color=colors[label], marker="o", markersize=5, capsize=2.5, linestyle="none",
        )  # fmt: skip
    ax.set_yticks(range(len(shown)), shown, fontsize=8)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    letter = full["global_letter"].iloc[0] if len(full) else "a"
    ax.set_xlabel(f"full model (rate {letter}), own scale", fontsize=8)
    ax.grid(alpha=0.3)


def method_colors(methods: pd.DataFrame) -> dict[str, str]:
    """Label -> colour: a method's own colour for its first row, the spare Okabe-Ito colours for variants."""
    taken = {spec.color for spec in METHODS.values()}
    spare = [c for name, c in OKABE_ITO.items() if name not in taken]
    colors: dict[str, str] = {}
    for label, method in zip(methods.index, methods["method"], strict=True):
        own = METHODS[method].hex_color if method in METHODS else None
        colors[label] = own if own is not None and own not in colors.values() else spare.pop(0) if spare else "#777777"
    return colors


def method_plot(table: Table, dataset: str, split: str):
    """The figure of a method-comparison table: one panel per model configuration, Global metric vs evaluated
    rate, one line (colour-blind-safe colour and its own marker) per method, error bars = std over seeds."""
    raw = table.raw[table.raw["kind"] == "Global"]
    sections = list(dict.fromkeys(raw["section"]))
    labels = list(dict.fromkeys(table.raw["label"]))
    methods = table.raw.drop_duplicates("label").set_index("label").loc[labels]
    colors = method_colors(methods)
    fig, axes, zooms = panel_grid(len(sections), 4.4, 3.4, zoom_height=0.5 + 0.28 * len(labels))
    width = 0.24  # horizontal spread of the methods at one rate, so that their error bars do not overlap
    for ax, zoom, section in zip(axes, zooms, sections, strict=True):
        part = raw[raw["section"] == section]
        present = [label for label in labels if label in set(part["label"])]
        full_model_panel(zoom, part, present, colors)
        for i, label in enumerate(present):
            points = part[part["label"] == label].assign(x=lambda p: p["letter"].map(letter_order)).sort_values("x")
            shift = (i - (len(present) - 1) / 2) * width / max(len(present) - 1, 1)
            method, variant = methods.loc[label, "method"], bool(methods.loc[label, "variant"])
            ax.errorbar(
                points["x"] + shift,
                points["mean"],
                yerr=points["std"].fillna(0.0),
                color=colors[label],
                marker=METHODS[method].marker if method in METHODS else "X",
                linestyle="--" if variant else "-",
                markerfacecolor="white" if variant else colors[label],
                linewidth=1.4,
                zorder=3 if method == "heterofl" else 2,
                markersize=5.5,
                capsize=2.5,
                label=label,
            )
        ax.set_xticks(range(len(LETTERS)), LETTERS)
        ax.set_xlim(-0.4, len(LETTERS) - 0.6)
        ax.set_xlabel("Evaluated rate")
        ax.set_ylabel(global_metric(dataset).replace("-", " "))
        ax.set_title(section, fontsize=10)
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.suptitle(f"{dataset} {split}: methods compared (mean ± std over seeds)")
    ncol = len(handles) if len(handles) <= 6 else -(-len(handles) // 2)
    rows = -(-len(handles) // ncol)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, (0.15 + 0.25 * rows) / fig.get_figheight(), 1, 1))  # room for the legend below
    return fig


def method_figure(table: Table, dataset: str, split: str, folder: Path) -> list[Path]:
    """``methods_{D}_{S}.pdf/.png`` from :func:`heterofl.report.methods.method_table`; nothing if it has no rows."""
    if table.raw.empty or not (table.raw["kind"] == "Global").any():
        return []
    fig = method_plot(table, dataset, split)
    written = save_figure(fig, folder, f"methods_{dataset}_{split}")
    plt.close(fig)
    return written


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry: only where a method table exists (more than one method ran)."""
    table = inputs.tables.get(f"methods_{dataset}_{split}")
    return [] if table is None else method_figure(table, dataset, split, folder)

"""``time_curves_{D}_{S}``: runs on the simulated clock, the global metric against simulated minutes, one panel
per device fleet, one line per setup (every method, not only HeteroFL), mean over seeds with a ± sd band."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from heterofl.report.figures.registry import FigureInputs
from heterofl.report.figures.shared import PALETTE, SERIES_MARKERS, figure_style, finish, metric_label, skipped


def time_curves_plot(curves: pd.DataFrame, dataset: str, split: str):
    """One panel per fleet; ``None`` without two evaluated points."""
    part = curves[(curves["dataset"] == dataset) & (curves["data_split_mode"] == split)]
    if part["round"].nunique() < 2:
        return None
    setups = list(dict.fromkeys(part.sort_values("setup")["setup"]))
    styles = {s: (PALETTE[i % len(PALETTE)], SERIES_MARKERS[i % len(SERIES_MARKERS)]) for i, s in enumerate(setups)}
    fleets = sorted(part["fleet"].unique())
    with figure_style():
        fig, axes = plt.subplots(
            1, len(fleets), figsize=(5.6 * len(fleets) + 0.6, 4.6), squeeze=False, sharey=True, layout="constrained"
        )
        for ax, fleet in zip(axes[0], fleets, strict=True):
            for setup in setups:
                runs = part[(part["fleet"] == fleet) & (part["setup"] == setup)]
                if runs.empty:
                    continue
                stats = runs.groupby("round").agg(
                    minutes=("minutes", "mean"), mean=("value", "mean"), sd=("value", "std")
                )
                color, marker = styles[setup]
                ax.plot(stats["minutes"], stats["mean"], color=color, marker=marker, markersize=4, label=setup)
                if runs["seed"].nunique() > 1:
                    low, high = stats["mean"] - stats["sd"], stats["mean"] + stats["sd"]
                    ax.fill_between(stats["minutes"], low, high, color=color, alpha=0.15, linewidth=0)
            ax.set_xscale("log")
            ax.set_title(f"fleet {fleet}", fontsize=10)
            ax.set_xlabel("Simulated time (minutes, log)")
            ax.set_ylabel(metric_label("Global", dataset))
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), frameon=False, fontsize=8)
        fig.suptitle(f"{dataset} {split}: global model against simulated time (mean ± sd over seeds)")
    return fig


def draw(inputs: FigureInputs, dataset: str, split: str | None, folder: Path) -> list[Path]:
    """The registry's entry: only where runs ran on the clock."""
    stem = f"time_curves_{dataset}_{split}"
    if inputs.clock_curves is None or inputs.clock_curves.empty:
        return skipped(stem, "no run on the simulated clock")
    fig = time_curves_plot(inputs.clock_curves, dataset, split)
    return skipped(stem, "fewer than two evaluations") if fig is None else finish(fig, folder, stem)

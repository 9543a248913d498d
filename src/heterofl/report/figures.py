"""Figures of the reference's ``make_vis`` (interpolation), learning curves and our per-rate submodel plot.

Each figure is written as PDF and PNG; a figure whose runs do not exist is skipped, never an error.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from heterofl.rates import ModelMode  # noqa: E402
from heterofl.report.aggregate import (  # noqa: E402
    BASELINE,
    LETTERS,
    equal_proportions,
    global_metric,
    is_language,
    is_non_iid,
    letter_order,
    local_metric,
    most_common_population,
)
from heterofl.report.output import save_figure  # noqa: E402
from heterofl.report.tables import Table, choose_modes  # noqa: E402

MARKERS = {
    "a-b": "o",
    "a-c": "s",
    "a-d": "p",
    "a-e": "P",
    "b-c": "*",
    "b-d": "h",
    "b-e": "X",
    "c-d": "D",
    "c-e": "^",
    "d-e": "v",
    "e": ">",
}
MAX_CURVES = 20


def _panels(count: int, width: float, height: float):
    """At most three panels per row, so five global rates stay readable; unused axes are hidden."""
    cols = min(3, count)
    rows = -(-count // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _legend(ax, many: bool, loc: str) -> None:
    if not ax.get_legend_handles_labels()[0]:
        return
    if many:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, ncol=1)
    else:
        ax.legend(fontsize=8, loc=loc)


def interpolation_figures(table: Table, dataset: str, split: str, folder: Path) -> list[Path]:
    """One row of panels per global rate: metric vs weighted Params as the share of rate X drops from 100 %."""
    raw = table.raw
    kinds = [("global", "global_mean")]
    if is_non_iid(split) and local_metric(dataset) is not None:
        kinds.append(("local", "local_mean"))
    ylabel_word = "Perplexity" if is_language(dataset) else "Accuracy"
    loc = "upper right" if is_language(dataset) else "lower right"
    panels = [x for x in LETTERS if any(p.split("-")[0] == x for p in raw["pair"].unique())]
    written: list[Path] = []
    for kind, column in kinds:
        data = raw.dropna(subset=[column])
        if data.empty or not panels:
            continue
        fig, axes = _panels(len(panels), 4.2, 3.6)
        for ax, letter in zip(axes, panels, strict=True):
            for pair in sorted(p for p in data["pair"].unique() if p.split("-")[0] == letter):
                points = data[data["pair"] == pair].sort_values("params")
                ax.plot(points["params"], points[column], marker=MARKERS.get(pair, "o"), label=pair, linewidth=1.2)
            ax.set_title(f"({letter}) global rate {letter}")
            ax.set_xlabel("Number of Model Parameters")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            ax.grid(alpha=0.3)
            _legend(ax, False, loc)
            ax.set_ylabel(f"{kind.capitalize()} {ylabel_word}")
        fig.suptitle(f"{dataset} {split}: interpolation ({kind})")
        fig.tight_layout()
        written += save_figure(fig, folder, f"interpolation_{dataset}_{split}_{kind}")
        plt.close(fig)
    return written


def _label(model_mode: str, split_mode: str) -> str:
    single = len(ModelMode.parse(model_mode).letters) == 1
    return model_mode if single else f"{model_mode} ({split_mode})"


def _select_curves(configs: pd.DataFrame) -> pd.DataFrame:
    """All configurations if legible; else singles and equal two-rate mixes (globally a first), as make_vis."""
    if configs["label"].nunique() <= MAX_CURVES:
        return configs
    letters = configs["model_mode"].map(lambda m: len(ModelMode.parse(m).letters))
    keep = configs[(letters == 1) | ((letters == 2) & configs["model_mode"].map(equal_proportions))]
    if keep["label"].nunique() > MAX_CURVES:
        letters = keep["model_mode"].map(lambda m: len(ModelMode.parse(m).letters))
        keep = keep[(letters == 1) | (keep["global_letter"] == "a")]
    return keep


def _configs(runs: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
    """One row per run (seed) of the paper's setting (sBN, scaler, mask) for this dataset and split."""
    frame = runs[(runs["dataset"] == dataset) & (runs["data_split_mode"] == split)]
    for name in ("norm", "scale", "mask"):
        frame = frame[frame[name] == BASELINE[name]]
    frame = most_common_population(frame)
    configs = frame.drop_duplicates(["control", "seed"])[
        ["dataset", "model", "control", "seed", "model_mode", "model_split_mode", "global_letter"]
    ]
    return configs.assign(
        label=[_label(m, s) for m, s in zip(configs["model_mode"], configs["model_split_mode"], strict=True)]
    )


def learning_curve_figures(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str, folder: Path):
    """Global (and local) metric of the global model vs communication round, mean over seeds with a band."""
    configs = _select_curves(_configs(runs, dataset, split))
    if configs.empty or history.empty:
        return []
    curves = history.merge(configs, on=["dataset", "model", "control", "seed"])
    curves = curves[curves["letter"] == curves["global_letter"]]
    kinds = [("global", global_metric(dataset))]
    if is_non_iid(split) and local_metric(dataset) is not None:
        kinds.append(("local", local_metric(dataset)))
    written: list[Path] = []
    for kind, metric in kinds:
        data = curves[curves["metric"] == metric]
        if data.empty:
            continue
        order = sorted(data["label"].unique(), key=lambda s: (letter_order(s[0]), len(s), s))
        many = len(order) > 8
        fig, ax = plt.subplots(figsize=(7.5 if many else 5.5, 4.0))
        palette = sns.color_palette("tab20" if len(order) > 10 else "tab10", len(order))
        sns.lineplot(
            data=data, x="round", y="value", hue="label", hue_order=order, palette=palette, errorbar="sd", ax=ax
        )
        ax.set_xlabel("Communication rounds")
        ax.set_ylabel(f"{kind.capitalize()} {metric.split('-')[-1]}")
        ax.set_title(f"{dataset} {split}: learning curves ({kind})")
        ax.grid(alpha=0.3)
        _legend(ax, many, "upper right" if is_language(dataset) else "lower right")
        fig.tight_layout()
        written += save_figure(fig, folder, f"learning_curve_{dataset}_{split}_{kind}")
        plt.close(fig)
    return written


def submodel_figure(runs: pd.DataFrame, value: str, dataset: str, split: str, folder: Path) -> list[Path]:
    """Global metric of the final global model at each evaluated rate, one panel per global rate."""
    configs = _configs(runs, dataset, split)
    if configs.empty:
        return []
    if configs["label"].nunique() > MAX_CURVES:
        chosen = choose_modes(configs.drop_duplicates(["model_mode", "model_split_mode"]))
        configs = configs.merge(chosen, on=["model_mode", "model_split_mode"])
    metric = global_metric(dataset)
    keys = ["dataset", "model", "control", "seed"]
    data = runs[runs["metric"] == metric].merge(configs[[*keys, "label"]], on=keys)
    if data.empty:
        return []
    data = data.assign(position=data["letter"].map(letter_order))
    panels = [x for x in LETTERS if x in set(data["global_letter"])]
    fig, axes = _panels(len(panels), 5.6, 3.8)
    for ax, letter in zip(axes, panels, strict=True):
        part = data[data["global_letter"] == letter]
        order = sorted(part["label"].unique(), key=lambda s: (len(s), s))
        palette = sns.color_palette("tab20" if len(order) > 10 else "tab10", len(order))
        sns.lineplot(
            data=part, x="position", y=value, hue="label", hue_order=order, palette=palette,
            errorbar="sd", marker="o", ax=ax,
        )  # fmt: skip
        ax.set_xticks(range(len(LETTERS)), LETTERS)
        ax.set_xlim(-0.3, len(LETTERS) - 0.7)
        ax.set_xlabel("Evaluated rate")
        ax.set_ylabel(metric.replace("-", " "))
        ax.set_title(f"global rate {letter}")
        ax.grid(alpha=0.3)
        _legend(ax, len(order) > 8, "best")
    fig.suptitle(f"{dataset} {split}: submodels of the global model")
    fig.tight_layout()
    written = save_figure(fig, folder, f"submodels_{dataset}_{split}")
    plt.close(fig)
    return written


METHOD_MARKERS = {"heterofl": "o", "fedrolex": "s", "fd": "^", "fedecover": "D", "fjord": "v"}
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "bluish green": "#009E73",
    "blue": "#0072B2",
    "reddish purple": "#CC79A7",
    "vermillion": "#D55E00",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
}
METHOD_COLORS = {
    "heterofl": "black",
    "fedrolex": "orange",
    "fd": "bluish green",
    "fedecover": "blue",
    "fjord": "reddish purple",
}
"""Fixed per method, so a method keeps its colour across figures; Okabe-Ito, safe for colour-vision deficiency."""


def _method_colors(methods: pd.DataFrame) -> dict[str, str]:
    """Label -> colour: a method's own colour for its first row, the spare Okabe-Ito colours for variants."""
    spare = [c for name, c in OKABE_ITO.items() if name not in METHOD_COLORS.values()]
    colors: dict[str, str] = {}
    for label, method in zip(methods.index, methods["method"], strict=True):
        own = OKABE_ITO[METHOD_COLORS[method]] if method in METHOD_COLORS else None
        colors[label] = own if own is not None and own not in colors.values() else spare.pop(0) if spare else "#777777"
    return colors


def method_plot(table: Table, dataset: str, split: str):
    """The figure of a method-comparison table: one panel per model configuration, Global metric vs evaluated
    rate, one line (colour-blind-safe colour and its own marker) per method, error bars = std over seeds."""
    raw = table.raw[table.raw["kind"] == "Global"]
    sections = list(dict.fromkeys(raw["section"]))
    labels = list(dict.fromkeys(table.raw["label"]))
    methods = table.raw.drop_duplicates("label").set_index("label").loc[labels]
    colors = _method_colors(methods)
    fig, axes = _panels(len(sections), 4.4, 3.4)
    width = 0.24  # horizontal spread of the methods at one rate, so that their error bars do not overlap
    for ax, section in zip(axes, sections, strict=True):
        part = raw[raw["section"] == section]
        present = [label for label in labels if label in set(part["label"])]
        for i, label in enumerate(present):
            points = part[part["label"] == label].assign(x=lambda p: p["letter"].map(letter_order)).sort_values("x")
            shift = (i - (len(present) - 1) / 2) * width / max(len(present) - 1, 1)
            method, variant = methods.loc[label, "method"], bool(methods.loc[label, "variant"])
            ax.errorbar(
                points["x"] + shift,
                points["mean"],
                yerr=points["std"].fillna(0.0),
                color=colors[label],
                marker=METHOD_MARKERS.get(method, "X"),
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

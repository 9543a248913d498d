"""The figures' shared vocabulary: which runs form a configuration, its family, label, colour and marker,
and the drawing helpers every figure uses (one colour-blind-safe palette, one marker per series).

Every ``*_plot`` function of the figure modules returns a :class:`matplotlib.figure.Figure`, or ``None`` when
its data cannot fill a panel with two points; ``*_figure`` saves and closes it (:func:`finish`), or logs why
nothing was drawn (:func:`skipped`). A skipped figure is never an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import EngFormatter, MaxNLocator

from heterofl.rates import ModelMode
from heterofl.report.output import save_figure
from heterofl.report.seed_stats import (
    BASELINE,
    global_metric,
    is_language,
    is_non_iid,
    letter_order,
    local_metric,
    metric_word,
    most_common_population,
)

log = logging.getLogger(__name__)

PALETTE = [sns.color_palette("colorblind")[i] for i in (0, 1, 2, 3, 4, 5, 6, 9, 7, 8)]
"""seaborn's colour-blind-safe palette, its pale yellow and grey last (they read worst on white)."""
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
FAMILIES = ("single rates", "combinations", "interpolations")
FAMILY_MARKERS = dict(zip(FAMILIES, ("o", "s", "^"), strict=True))
FAMILY_COLORS = dict(zip(FAMILIES, PALETTE[:3], strict=True))
HEATMAP_CMAP = "cividis"  # sequential and colour-blind safe
KEYS = ["dataset", "model", "control", "seed"]
VALUE_WORDS = {"final": "final evaluation", "best": "best evaluation", "mean_last_k": "mean of the last evaluations"}


# --- vocabulary: configurations, families, labels, styles -------------------------------------------------


def family(model_mode: str, split_mode: str) -> str:
    """``single rates`` (one letter), ``interpolations`` (fix ``X{i}-Y{10-i}``, as the interpolation table) or
    ``combinations`` (every other mix)."""
    mode = ModelMode.parse(model_mode)
    if len(mode.letters) == 1:
        return "single rates"
    if split_mode == "fix" and len(mode.letters) == 2 and sum(mode.proportions) == 10:
        return "interpolations"
    return "combinations"


def config_label(model_mode: str, split_mode: str) -> str:
    """``a`` for a single rate, ``a-e`` for an equal dynamic mix (the paper's names), the mode otherwise;
    a fix combination is marked ``(fix)``."""
    mode = ModelMode.parse(model_mode)
    kind = family(model_mode, split_mode)
    if kind == "single rates":
        return mode.letters[0]
    if kind == "interpolations":
        return model_mode
    short = "-".join(mode.letters) if set(mode.proportions) == {1} else model_mode
    return f"{short} (fix)" if split_mode == "fix" else short


def config_order(model_mode: str, split_mode: str) -> tuple:
    """Families in :data:`FAMILIES` order, then global rate, then letters, then a falling share of the first."""
    mode = ModelMode.parse(model_mode)
    return (
        FAMILIES.index(family(model_mode, split_mode)),
        letter_order(mode.letters[0]),
        len(mode.letters),
        tuple(letter_order(x) for x in mode.letters),
        -mode.probabilities[0],
        split_mode,
        model_mode,
    )


def paper_configs(runs: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
    """One row per run (seed) of the paper's setting (sBN, scaler, mask) for this dataset and split, with its
    ``label``, ``family`` and sort ``order``."""
    columns = [*KEYS, "model_mode", "model_split_mode", "global_letter", "resnet_blocks", "label", "family", "order"]
    frame = runs[(runs["dataset"] == dataset) & (runs["data_split_mode"] == split)]
    for name in ("norm", "scale", "mask"):
        frame = frame[frame[name] == BASELINE[name]]
    frame = most_common_population(frame)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    configs = frame.drop_duplicates(["control", "seed"])
    pairs = list(zip(configs["model_mode"], configs["model_split_mode"], strict=True))
    configs = configs.assign(
        label=[config_label(m, s) for m, s in pairs],
        family=[family(m, s) for m, s in pairs],
        order=[config_order(m, s) for m, s in pairs],
    )
    return configs[columns].reset_index(drop=True)


def ordered_labels(labels_with_order: pd.DataFrame) -> list[str]:
    first = labels_with_order.drop_duplicates("label")
    return [label for _, label in sorted(zip(first["order"], first["label"], strict=True))]


def series_styles(configs: pd.DataFrame) -> dict[str, dict]:
    """label -> colour and marker, counted within each family so that a family's panel has distinct colours;
    the same configuration gets the same style in every figure of a split."""
    styles: dict[str, dict] = {}
    for kind in FAMILIES:
        labels = ordered_labels(configs[configs["family"] == kind])
        first = emphasised(labels)  # the ones drawn in colour get the palette's first, most distinct colours
        for i, label in enumerate([*first, *(x for x in labels if x not in first)]):
            styles[label] = {"color": PALETTE[i % len(PALETTE)], "marker": SERIES_MARKERS[i % len(SERIES_MARKERS)]}
    return styles


def metric_kinds(dataset: str, split: str) -> list[tuple[str, str]]:
    """(``Global``/``Local``, metric): the local metric only where it differs, on label-skewed splits."""
    kinds = [("Global", global_metric(dataset))]
    local = local_metric(dataset)
    if is_non_iid(split) and local is not None:
        kinds.append(("Local", local))
    return kinds


def metric_label(kind: str, dataset: str) -> str:
    word = metric_word(dataset)
    return f"{kind} {word.lower()}" + ("" if is_language(dataset) else " (%)")


def seed_note(n: pd.Series) -> str:
    most = int(n.max()) if len(n) else 1
    return f"mean ± sd over up to {most} seeds" if most > 1 else "one seed"


def points_drawn(ax) -> int:
    """Data points drawn on an axes: markers of lines and scatter offsets (what a reader can see)."""
    count = 0
    for line in ax.get_lines():
        if line.get_label().startswith("_") and line.get_marker() in ("None", "", " ", None):
            continue  # error-bar caps and guides
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        count += int(np.sum(np.isfinite(x) & np.isfinite(y)))
    for collection in ax.collections:
        if isinstance(collection, matplotlib.collections.PathCollection):
            count += len(collection.get_offsets())
    return count


def figure_style():
    return sns.axes_style("whitegrid", {"grid.color": "0.9"})


def engineering_axis(ax, axis: str, unit: str = "") -> None:
    formatter = EngFormatter(unit=unit, sep=" " if unit else "")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def finish(fig, folder: Path, stem: str) -> list[Path]:
    written = save_figure(fig, folder, stem)
    plt.close(fig)
    return written


def skipped(stem: str, why: str) -> list[Path]:
    log.info("figure %s skipped: %s", stem, why)
    return []


def global_curves(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str) -> tuple[pd.DataFrame, dict]:
    """History of the global model (its own letter) of the split's configurations, and their styles."""
    configs = paper_configs(runs, dataset, split)
    if configs.empty or history.empty:
        return pd.DataFrame(), {}
    columns = [*KEYS, "global_letter", "label", "family", "order"]
    curves = history.merge(configs[columns], on=KEYS)
    return curves[curves["letter"] == curves["global_letter"]], series_styles(configs)


def seed_band(frame: pd.DataFrame, by: list[str], column: str = "value") -> pd.DataFrame:
    out = frame.groupby(by, sort=True)[column].agg(["mean", "std", "count"]).reset_index()
    return out.merge(frame.drop_duplicates("label")[["label", "order"]], on="label")


def draw_series(ax, x, stats: pd.DataFrame, style: dict, label: str) -> None:
    """A marked line; a mean ± sd band where several seeds share a point."""
    ax.plot(x, stats["mean"], color=style["color"], marker=style["marker"], markersize=5, linewidth=1.4, label=label)
    several = stats["count"] > 1
    if several.sum() >= 2:
        low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(x[several], low[several], high[several], color=style["color"], alpha=0.18, linewidth=0)
    elif several.any():
        ax.errorbar(x[several], stats["mean"][several], yerr=stats["std"][several], color=style["color"], capsize=2)


MAX_EMPHASISED = 5
"""Series drawn in colour in one family panel; the rest of a longer family are thin grey context lines."""
CONTEXT_LABEL = "other mixes (grey)"


def emphasised(labels: list[str], most: int = MAX_EMPHASISED) -> list[str]:
    """At most ``most`` of the ordered ``labels``, evenly spaced and always the first and the last (for the
    interpolations: the largest and smallest share of the global rate, and the mixes between)."""
    if len(labels) <= most:
        return list(labels)
    picks = sorted({round(i * (len(labels) - 1) / (most - 1)) for i in range(most)})
    return [labels[i] for i in picks]


def draw_family(ax, part: pd.DataFrame, styles: dict[str, dict], x: str) -> None:
    """Every configuration of one family panel against column ``x``: an evenly spaced few in colour with markers,
    the others as thin grey lines under them, so ten curves of four points stay readable."""
    labels = ordered_labels(part)
    shown = emphasised(labels)
    context_named = False
    for label in labels:
        series = part[part["label"] == label].sort_values("round").reset_index(drop=True)
        if label in shown:
            draw_series(ax, series[x], series, styles[label], label)
            continue
        name = "_context" if context_named else CONTEXT_LABEL
        ax.plot(series[x], series["mean"], color="0.72", linewidth=0.9, zorder=1, label=name)
        context_named = True


def family_grid(stats_by_row: list[tuple[str, pd.DataFrame]], families: list[str], width: float, height: float):
    fig, axes = plt.subplots(
        len(stats_by_row), len(families), figsize=(width * len(families) + 0.4, height * len(stats_by_row) + 1.2),
        sharey="row", squeeze=False, layout="constrained",
    )  # fmt: skip
    return fig, axes


def column_legends(axes, below: bool = True) -> None:
    """One legend per column (the same configurations in every row), under its lowest visible panel."""
    for col in range(axes.shape[1]):
        visible = [axes[row][col] for row in range(axes.shape[0]) if axes[row][col].get_visible()]
        if not visible:
            continue
        handles, labels = visible[-1].get_legend_handles_labels()
        if handles:
            visible[-1].legend(
                handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, len(labels)),
                fontsize=8, frameon=False,
            )  # fmt: skip


def hide_sparse(axes) -> None:
    """No panel with fewer than two points: such a panel is hidden."""
    for ax in axes.flat:
        if points_drawn(ax) < 2:
            ax.set_visible(False)


def round_ticks(ax, rounds: pd.Series) -> None:
    """A tick at every evaluated round when there are few, else integer ticks."""
    evaluated = sorted(rounds.unique())
    if len(evaluated) <= 12:
        ax.set_xticks(evaluated)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

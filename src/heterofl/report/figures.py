"""The report's figures, each written as PDF and PNG through :func:`heterofl.report.output.save_figure`.

Stems (``{D}`` dataset, ``{S}`` data split mode as in the control string):

* ``interpolation_{D}``: fix-mode mixes ``X{i}-Y{10-i}`` with their endpoints; metric against the share of clients
  at the larger rate X (top row) and against the proportion-weighted parameters (bottom row); one column per
  split (and per local metric on non-IID splits), one marked line per interpolated pair.
* ``pareto_{D}``: every configuration's metric against proportion-weighted parameters and FLOPs per client,
  one row per split (and local metric), the Pareto front drawn and its configurations named.
* ``rates_heatmap_{D}_{S}``: the final global model evaluated at every rate a..e (columns), per configuration
  (rows), annotated with the value (and ± sd over seeds).
* ``learning_curves_{D}_{S}``: metric of the global model against the communication round, one panel per
  family (single rates, combinations, interpolations), a marker at every evaluation, a mean ± sd band over
  seeds; with one evaluation per run, that evaluation per configuration as a point plot.
* ``cost_curves_{D}_{S}``: global metric against cumulative communication (MB) and cumulative client training
  compute (MACs), from ``summary/cost.csv``; not drawn without it.
* ``methods_{D}_{S}``: the method comparison, one panel per configuration.

Every ``*_plot`` function returns a :class:`matplotlib.figure.Figure`, or ``None`` when its data cannot fill
a panel with two points; ``*_figure`` saves and closes it, or logs why nothing was drawn. A skipped figure is
never an error. One colour-blind-safe palette (seaborn ``colorblind``) and one marker per series throughout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from heterofl.methods.registry import METHODS, OKABE_ITO  # noqa: E402
from heterofl.rates import RATE_OF_LETTER, ModelMode  # noqa: E402
from heterofl.report.aggregate import (  # noqa: E402
    BASELINE,
    LETTERS,
    global_metric,
    is_language,
    is_non_iid,
    letter_order,
    local_metric,
    metric_word,
    mode_cost,
    most_common_population,
)
from heterofl.report.output import save_figure  # noqa: E402
from heterofl.report.tables import Table  # noqa: E402

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


def _configs(runs: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
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


def _ordered(labels_with_order: pd.DataFrame) -> list[str]:
    first = labels_with_order.drop_duplicates("label")
    return [label for _, label in sorted(zip(first["order"], first["label"], strict=True))]


def series_styles(configs: pd.DataFrame) -> dict[str, dict]:
    """label -> colour and marker, counted within each family so that a family's panel has distinct colours;
    the same configuration gets the same style in every figure of a split."""
    styles: dict[str, dict] = {}
    for kind in FAMILIES:
        for i, label in enumerate(_ordered(configs[configs["family"] == kind])):
            styles[label] = {"color": PALETTE[i % len(PALETTE)], "marker": SERIES_MARKERS[i % len(SERIES_MARKERS)]}
    return styles


def _kinds(dataset: str, split: str) -> list[tuple[str, str]]:
    """(``Global``/``Local``, metric): the local metric only where it differs, on label-skewed splits."""
    kinds = [("Global", global_metric(dataset))]
    local = local_metric(dataset)
    if is_non_iid(split) and local is not None:
        kinds.append(("Local", local))
    return kinds


def _ylabel(kind: str, dataset: str) -> str:
    word = metric_word(dataset)
    return f"{kind} {word.lower()}" + ("" if is_language(dataset) else " (%)")


def _seed_note(n: pd.Series) -> str:
    most = int(n.max()) if len(n) else 1
    return f"mean ± sd over up to {most} seeds" if most > 1 else "one seed"


def _points(ax) -> int:
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


def _style():
    return sns.axes_style("whitegrid", {"grid.color": "0.9"})


def _engineering(ax, axis: str, unit: str = "") -> None:
    formatter = EngFormatter(unit=unit, sep=" " if unit else "")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def _finish(fig, folder: Path, stem: str) -> list[Path]:
    written = save_figure(fig, folder, stem)
    plt.close(fig)
    return written


def _skipped(stem: str, why: str) -> list[Path]:
    log.info("figure %s skipped: %s", stem, why)
    return []


# --- interpolation -------------------------------------------------------------------------------------------


def interpolation_plot(tables: dict[str, Table], dataset: str):
    """Interpolation tables (split -> :func:`heterofl.report.tables.interpolation_table`) in one figure: per
    split (and local metric) a column, share of X on top, proportion-weighted parameters below; pairs with fewer
    than two points (the lone ``e`` endpoint) are left out."""
    columns = []
    for split in sorted(s for s, table in tables.items() if table is not None):
        raw = tables[split].raw
        for kind, _ in _kinds(dataset, split):
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
    with _style():
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
                    _engineering(ax, "x")
                    ax.set_xlabel("Parameters per client (proportion-weighted, log)")
                ax.set_ylabel(_ylabel(kind, dataset))
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
        fig.suptitle(f"{dataset}: interpolation between a larger rate X and a smaller rate Y ({_seed_note(seeds)})")
    return fig


def interpolation_figure(tables: dict[str, Table], dataset: str, folder: Path) -> list[Path]:
    """``interpolation_{D}``; nothing (a log line) where no pair has two points."""
    stem = f"interpolation_{dataset}"
    fig = interpolation_plot(tables, dataset)
    return _skipped(stem, "no interpolation pair with two points") if fig is None else _finish(fig, folder, stem)


# --- per-rate heatmap ------------------------------------------------------------------------------------------


def rates_heatmap_plot(runs: pd.DataFrame, value: str, dataset: str, split: str):
    """Configurations (rows) x evaluated rate of the final global model (columns), annotated; blank (grey) where
    a rate is above the configuration's global rate and was not evaluated."""
    configs = _configs(runs, dataset, split)
    metric = global_metric(dataset)
    data = runs[runs["metric"] == metric].merge(configs[[*KEYS, "label", "order"]], on=KEYS)
    if data.empty:
        return None
    stats = data.groupby(["label", "letter"])[value].agg(["mean", "std", "count"]).reset_index()
    rows = _ordered(data)
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
            annot_kws={"fontsize": 7 if several else 8}, cbar_kws={"label": _ylabel("Global", dataset), "pad": 0.06},
            ax=ax, **scale,
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
    return _skipped(stem, "fewer than two evaluated rates") if fig is None else _finish(fig, folder, stem)


# --- learning curves -------------------------------------------------------------------------------------------


def _curves(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str) -> tuple[pd.DataFrame, dict]:
    """History of the global model (its own letter) of the split's configurations, and their styles."""
    configs = _configs(runs, dataset, split)
    if configs.empty or history.empty:
        return pd.DataFrame(), {}
    columns = [*KEYS, "global_letter", "label", "family", "order"]
    curves = history.merge(configs[columns], on=KEYS)
    return curves[curves["letter"] == curves["global_letter"]], series_styles(configs)


def _seed_stats(frame: pd.DataFrame, by: list[str], column: str = "value") -> pd.DataFrame:
    out = frame.groupby(by, sort=True)[column].agg(["mean", "std", "count"]).reset_index()
    return out.merge(frame.drop_duplicates("label")[["label", "order"]], on="label")


def _draw_series(ax, x, stats: pd.DataFrame, style: dict, label: str) -> None:
    """A marked line; a mean ± sd band where several seeds share a point."""
    ax.plot(x, stats["mean"], color=style["color"], marker=style["marker"], markersize=5, linewidth=1.4, label=label)
    several = stats["count"] > 1
    if several.sum() >= 2:
        low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(x[several], low[several], high[several], color=style["color"], alpha=0.18, linewidth=0)
    elif several.any():
        ax.errorbar(x[several], stats["mean"][several], yerr=stats["std"][several], color=style["color"], capsize=2)


def _family_grid(stats_by_row: list[tuple[str, pd.DataFrame]], families: list[str], width: float, height: float):
    fig, axes = plt.subplots(
        len(stats_by_row), len(families), figsize=(width * len(families) + 0.4, height * len(stats_by_row) + 1.2),
        sharey="row", squeeze=False, layout="constrained",
    )  # fmt: skip
    return fig, axes


def _column_legends(axes, below: bool = True) -> None:
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


def _hide_sparse(axes) -> None:
    """No panel with fewer than two points: such a panel is hidden."""
    for ax in axes.flat:
        if _points(ax) < 2:
            ax.set_visible(False)


def _round_ticks(ax, rounds: pd.Series) -> None:
    """A tick at every evaluated round when there are few, else integer ticks."""
    evaluated = sorted(rounds.unique())
    if len(evaluated) <= 12:
        ax.set_xticks(evaluated)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def learning_curves_plot(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str):
    """Metric vs round, one panel per family (columns) and metric kind (rows, local on non-IID splits), mean ±
    sd band over seeds; with one evaluation per run :func:`single_evaluation_plot` instead."""
    curves, styles = _curves(runs, history, dataset, split)
    if curves.empty:
        return None
    if curves.groupby("label")["round"].nunique().max() < 2:
        return single_evaluation_plot(curves, dataset, split)
    rows = []
    for kind, metric in _kinds(dataset, split):
        part = curves[curves["metric"] == metric]
        if not part.empty:
            rows.append((kind, _seed_stats(part, ["family", "label", "round"])))
    families = [f for f in FAMILIES if any(f in set(s["family"]) for _, s in rows)]
    if not rows:
        return None
    with _style():
        fig, axes = _family_grid(rows, families, 4.6, 3.2)
        for r, (kind, stats) in enumerate(rows):
            for c, kind_of_run in enumerate(families):
                ax = axes[r][c]
                part = stats[stats["family"] == kind_of_run]
                for label in _ordered(part):
                    series = part[part["label"] == label].sort_values("round").reset_index(drop=True)
                    _draw_series(ax, series["round"], series, styles[label], label)
                if r == 0:
                    ax.set_title(kind_of_run, fontsize=10)
                ax.set_xlabel("Communication round")
                _round_ticks(ax, stats["round"])
                ax.set_ylabel(_ylabel(kind, dataset) if c == 0 else "")
        _hide_sparse(axes)
        if not any(ax.get_visible() for ax in axes.flat):
            plt.close(fig)
            return single_evaluation_plot(curves, dataset, split)
        _column_legends(axes)
        counts = pd.concat([s["count"] for _, s in rows])
        fig.suptitle(f"{dataset} {split}: learning curves of the global model ({_seed_note(counts)})")
    return fig


def single_evaluation_plot(curves: pd.DataFrame, dataset: str, split: str):
    """One evaluation per run: that evaluation per configuration (x), marked by family; ``None`` with fewer than
    two configurations."""
    last = curves.sort_values("round").groupby([*KEYS, "metric"], sort=False).tail(1)
    if last["label"].nunique() < 2:
        return None
    rounds = sorted(last["round"].unique())
    when = f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {rounds[0]}-{rounds[-1]}"
    kinds = [(k, m) for k, m in _kinds(dataset, split) if (last["metric"] == m).any()]
    with _style():
        fig, axes = plt.subplots(
            1, len(kinds), figsize=(max(5.0, 0.45 * last["label"].nunique() + 2.0) * len(kinds), 4.0),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for ax, (kind, metric) in zip(axes[0], kinds, strict=True):
            stats = _seed_stats(last[last["metric"] == metric], ["family", "label"])
            order = _ordered(stats)
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
            ax.set_ylabel(_ylabel(kind, dataset))
            ax.legend(fontsize=8, title="family", title_fontsize=8)
        fig.suptitle(f"{dataset} {split}: one evaluation per run ({when}), every configuration")
    return fig


def learning_curves_figure(runs: pd.DataFrame, history: pd.DataFrame, dataset: str, split: str, folder: Path):
    """``learning_curves_{D}_{S}``; nothing (a log line) without two points to draw."""
    stem = f"learning_curves_{dataset}_{split}"
    fig = learning_curves_plot(runs, history, dataset, split)
    return _skipped(stem, "no history with two points") if fig is None else _finish(fig, folder, stem)


# --- Pareto view -------------------------------------------------------------------------------------------------


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


def _final_stats(runs: pd.DataFrame, value: str, dataset: str, split: str, metric: str) -> pd.DataFrame:
    """Per configuration: mean, sd and seeds of ``value`` of its global model, with proportion-weighted cost."""
    configs = _configs(runs, dataset, split)
    data = runs[runs["metric"] == metric].merge(configs[[*KEYS, "label", "family", "order"]], on=KEYS)
    data = data[data["letter"] == data["global_letter"]]
    if data.empty:
        return pd.DataFrame()
    stats = data.groupby(["family", "label"])[value].agg(["mean", "std", "count"]).reset_index()
    first = data.drop_duplicates("label").set_index("label")
    costs = [
        mode_cost(first.at[x, "model"], first.at[x, "resnet_blocks"], first.at[x, "model_mode"]) for x in stats["label"]
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
        for kind, metric in _kinds(dataset, split):
            stats = _final_stats(runs, value, dataset, split, metric)
            if len(stats) >= 2:
                rows.append((split, kind, stats))
    if not rows:
        return None
    higher = not is_language(dataset)
    with _style():
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
                _engineering(ax, "x")
                ax.set_xlabel(f"{xlabel}, proportion-weighted (log)")
                ax.set_ylabel(_ylabel(kind, dataset) if c == 0 else "")
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
                     f"({VALUE_WORDS.get(value, value)}, {_seed_note(counts)})")  # fmt: skip
    return fig


def pareto_figure(runs: pd.DataFrame, value: str, dataset: str, folder: Path) -> list[Path]:
    """``pareto_{D}``; nothing (a log line) where no split has two configurations."""
    stem = f"pareto_{dataset}"
    fig = pareto_plot(runs, value, dataset)
    return _skipped(stem, "fewer than two configurations per split") if fig is None else _finish(fig, folder, stem)


# --- communication and compute ---------------------------------------------------------------------------------


def cost_curves_plot(runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame, dataset: str, split: str):
    """Global metric at each evaluation against the cumulative bytes to and from clients (top row) and the
    cumulative client training MACs (bottom row) up to that round; one panel per family, shared axes per row."""
    curves, styles = _curves(runs, history, dataset, split)
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
    stats = _seed_stats(joined, by).merge(joined.groupby(by)[["communication", "compute"]].mean().reset_index(), on=by)
    axes_spec = (
        ("communication", "B", "Cumulative communication to and from clients"),
        ("compute", "MAC", "Cumulative client training compute"),
    )
    families = [f for f in FAMILIES if f in set(stats["family"])]
    with _style():
        fig, axes = plt.subplots(
            2, len(families), figsize=(4.6 * len(families) + 0.4, 7.6), sharex="row", sharey=True, squeeze=False,
            layout="constrained",
        )  # fmt: skip
        for r, (column, unit, xlabel) in enumerate(axes_spec):
            logarithmic = bool((stats[column] > 0).all())  # costs span decades: a at 240 times e
            for c, name in enumerate(families):
                ax = axes[r][c]
                part = stats[stats["family"] == name]
                for label in _ordered(part):
                    series = part[part["label"] == label].sort_values("round").reset_index(drop=True)
                    _draw_series(ax, series[column], series, styles[label], label)
                if r == 0:
                    ax.set_title(name, fontsize=10)
                if logarithmic:
                    ax.set_xscale("log")
                _engineering(ax, "x", unit)
                ax.set_xlabel(f"{xlabel}{' (log)' if logarithmic else ''}")
                ax.set_ylabel(_ylabel("Global", dataset) if c == 0 else "")
        _hide_sparse(axes)
        if not any(ax.get_visible() for ax in axes.flat):
            plt.close(fig)
            return None
        _column_legends(axes)
        fig.suptitle(f"{dataset} {split}: global {metric_word(dataset).lower()} against communication and client "
                     f"compute ({_seed_note(stats['count'])})")  # fmt: skip
    return fig


def cost_curves_figure(
    runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame | None, dataset: str, split: str, folder: Path
) -> list[Path]:
    """``cost_curves_{D}_{S}``; nothing (a log line) without cost rows for the split's evaluated rounds."""
    stem = f"cost_curves_{dataset}_{split}"
    if cost is None or cost.empty:
        return _skipped(stem, "no cost data (summary/cost.csv)")
    fig = cost_curves_plot(runs, history, cost, dataset, split)
    return _skipped(stem, "no cost rows at evaluated rounds") if fig is None else _finish(fig, folder, stem)


# --- methods ---------------------------------------------------------------------------------------------------


def _panels(count: int, width: float, height: float):
    """At most three panels per row; unused axes are hidden."""
    cols = min(3, count)
    rows = -(-count // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _method_colors(methods: pd.DataFrame) -> dict[str, str]:
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

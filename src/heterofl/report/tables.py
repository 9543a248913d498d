"""The paper's tables from seed statistics: combination (Table 1), interpolation, ablation (Table 2), per-rate.

Every builder takes :func:`heterofl.report.seed_stats.seed_stats` output and returns :class:`Table` objects
(formatted strings for reading, raw numbers for computing); an absent kind of run gives no table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from heterofl.rates import ModelMode
from heterofl.report.formatting import fmt_fixed, fmt_flops, fmt_mean_std, fmt_params
from heterofl.report.paper_numbers import paper_columns, published
from heterofl.report.seed_stats import (
    LETTERS,
    baseline,
    equal_proportions,
    global_metric,
    global_rows,
    is_non_iid,
    letter_order,
    local_metric,
    metric_word,
    mode_cost,
    most_common_population,
    non_iid_split,
    normalized,
)

NORM_ORDER = {"none": 0, "in": 1, "gn": 2, "ln": 3, "bn": 4}


@dataclass(frozen=True)
class Table:
    """One table: file stem, formatted frame, raw numbers, caption, optional section column."""

    stem: str
    table: pd.DataFrame
    raw: pd.DataFrame
    caption: str
    group: str | None = None
    notes: tuple[str, ...] = ()
    """Lines printed under the table (Markdown and LaTeX): the runs left out of its means, and why."""


def split_diverged(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows of healthy runs, one row per diverged run): flagged runs never enter a mean.

    A run is diverged when the collector found its ``DIVERGED`` flag (``diverged`` true; the rule is
    :func:`heterofl.divergence.detect_divergence`); a summary from before the flag existed has none.
    The second frame has ``dataset``, ``data_split_mode``, ``folder`` (``{dataset}/{model}/{run}/seed{N}``)
    and ``reason``.
    """
    columns = ["dataset", "data_split_mode", "folder", "reason"]
    if runs.empty or "diverged" not in runs.columns:
        return runs, pd.DataFrame(columns=columns)
    flagged = runs["diverged"].map(lambda v: v is True or str(v).strip().lower() in ("true", "1", "1.0"))
    bad = runs[flagged]
    excluded = pd.DataFrame(
        {
            "dataset": bad["dataset"],
            "data_split_mode": bad["data_split_mode"],
            "folder": run_folders(bad),
            "reason": bad.get("diverged_reason", pd.Series("", index=bad.index)).fillna("").astype(str),
        }
    )
    excluded = excluded.drop_duplicates("folder").sort_values("folder", kind="stable").reset_index(drop=True)
    return runs[~flagged].reset_index(drop=True), excluded


def run_folders(frame: pd.DataFrame) -> pd.Series:
    """``{dataset}/{model}/{run}/seed{N}`` of every row (of ``runs.csv`` or ``history.csv``)."""
    name = frame["run"] if "run" in frame.columns else frame["control"]
    return frame["dataset"] + "/" + frame["model"] + "/" + name + "/seed" + frame["seed"].astype(str)


def exclusion_note(row) -> str:
    return f"excluded: {row.folder} diverged ({row.reason or 'no reason given'})"


def with_exclusions(tables: list[Table], excluded: pd.DataFrame) -> list[Table]:
    """Each table with a note per diverged run of its dataset (``combination_{D}``) or dataset and split."""
    out = []
    for table in tables:
        notes = tuple(
            exclusion_note(row)
            for row in excluded.itertuples(index=False)
            if table.stem.endswith(f"_{row.dataset}_{row.data_split_mode}")
            or (table.stem == f"combination_{row.dataset}")
        )
        out.append(replace(table, notes=table.notes + notes) if notes else table)
    return out


def _value(frame: pd.DataFrame, metric: str | None) -> tuple[float, float, int]:
    """Mean, std and seed count of ``metric`` in a frame holding one configuration (NaN if absent)."""
    if metric is None:
        return float("nan"), float("nan"), 0
    hit = frame[frame["metric"] == metric]
    if hit.empty:
        return float("nan"), float("nan"), 0
    row = hit.iloc[0]
    return float(row["mean"]), float(row["std"]), int(row["n"])


def _acc(raw: pd.DataFrame, prefix: str) -> pd.Series:
    return pd.Series(
        [
            fmt_mean_std(m, s, n)
            for m, s, n in zip(raw[f"{prefix}_mean"], raw[f"{prefix}_std"], raw[f"{prefix}_n"], strict=True)
        ],
        index=raw.index,
        dtype=object,
    )


def _mode_label(model_mode: str, split_mode: str) -> str:
    """``a-e`` for equal proportions (the paper's names), the full mode otherwise; fix combinations marked."""
    mode = ModelMode.parse(model_mode)
    label = "-".join(mode.letters) if equal_proportions(model_mode) else model_mode
    return f"{label} (fix)" if split_mode == "fix" and len(mode.letters) > 1 else label


def choose_modes(frame: pd.DataFrame) -> pd.DataFrame:
    """One (model_mode, model_split_mode) per client population, as Table 1 picks them.

    Single rates: fix (dynamic is the same thing). Combinations: dynamic; a combination run only in fix
    mode is used (and labelled) if its proportions are equal; unequal fix mixes belong to interpolation.
    """
    pairs = frame[["model_mode", "model_split_mode"]].drop_duplicates()
    candidates = []
    for model_mode, split_mode in pairs.itertuples(index=False):
        letters, probabilities = normalized(model_mode)
        single = len(letters) == 1
        if not single and split_mode == "fix" and not equal_proportions(model_mode):
            continue
        preference = (0 if split_mode == "fix" else 1) if single else (0 if split_mode == "dynamic" else 1)
        total = sum(ModelMode.parse(model_mode).proportions)
        candidates.append((letters, probabilities, preference, total, model_mode, split_mode))
    chosen: dict[tuple, tuple] = {}
    for candidate in sorted(candidates):
        chosen.setdefault(candidate[:2], candidate)
    return pd.DataFrame(
        [(c[4], c[5]) for c in chosen.values()], columns=["model_mode", "model_split_mode"]
    ).drop_duplicates()


def combination_table(stats: pd.DataFrame, dataset: str) -> Table | None:
    """Table 1 for one dataset: cost columns, IID accuracy, non-IID local and global accuracy."""
    frame = global_rows(baseline(stats[stats["dataset"] == dataset]))
    if frame.empty:
        return None
    frame = frame[frame["data_split_mode"].eq("iid") | frame["data_split_mode"].map(is_non_iid)]
    if frame.empty:
        return None
    word = metric_word(dataset)
    other = non_iid_split(frame["data_split_mode"].tolist())
    rows = []
    for model_mode, split_mode in choose_modes(frame).itertuples(index=False):
        runs = frame[(frame["model_mode"] == model_mode) & (frame["model_split_mode"] == split_mode)]
        first = runs.iloc[0]
        cost = mode_cost(first["model"], first["resnet_blocks"], model_mode, dataset)
        iid = runs[runs["data_split_mode"] == "iid"]
        skew = runs[runs["data_split_mode"] == other]
        row = {
            "model_mode": model_mode,
            "label": _mode_label(model_mode, split_mode),
            "model_split_mode": split_mode,
            "global_letter": first["global_letter"],
            "ratio": cost["ratio"],
            "params": cost["params"],
            "flops": cost["flops_reference"],
            "space_mb": cost["space_mb"],
        }
        for prefix, part, metric in (
            ("iid", iid, global_metric(dataset)),
            ("noniid_local", skew, local_metric(dataset)),
            ("noniid_global", skew, global_metric(dataset)),
        ):
            row[f"{prefix}_mean"], row[f"{prefix}_std"], row[f"{prefix}_n"] = _value(part, metric)
            row[f"_paper_{prefix}"] = published(part.iloc[0], metric) if not part.empty else None
        row["noniid_split"] = other or ""
        rows.append(row)
    if not rows:  # only unequal fix mixes (e.g. a1-c2-e7): they belong to the interpolation tables, not Table 1
        return None
    raw = pd.DataFrame(rows)
    raw = raw.assign(_g=raw["global_letter"].map(letter_order), _r=-raw["ratio"].round(6))
    raw = raw.sort_values(["_g", "_r", "label"], kind="stable").drop(columns=["_g", "_r"]).reset_index(drop=True)
    table = pd.DataFrame(
        {
            "Model": raw["label"],
            "Ratio": raw["ratio"].map(fmt_fixed),
            "Params": raw["params"].map(fmt_params),
            "FLOPs": raw["flops"].map(fmt_flops),
            "Space (MB)": raw["space_mb"].map(fmt_fixed),
            f"IID {word}": _acc(raw, "iid"),
        }
    )
    if other is not None:
        if local_metric(dataset) is not None:
            table[f"Non-IID Local ({other})"] = _acc(raw, "noniid_local")
        table[f"Non-IID Global ({other})"] = _acc(raw, "noniid_global")
    table, raw, notes = paper_columns(
        table,
        raw,
        {
            "iid": (f"IID {word}", "IID"),
            "noniid_local": (f"Non-IID Local ({other})", "Local"),
            "noniid_global": (f"Non-IID Global ({other})", "Global"),
        },
    )
    caption = (
        f"{dataset}: combinations of computation complexity levels, global model {word.lower()} "
        f"(mean ± std over seeds); non-IID columns from {other or 'no non-IID runs'}."
    )
    return Table(f"combination_{dataset}", table, raw, caption, notes=notes)


def _interpolation_pairs(frame: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """``X-Y`` -> [(model_mode, share of X)] for fix runs ``X{i}-Y{10-i}``."""
    pairs: dict[str, list[tuple[str, float]]] = {}
    for model_mode in sorted(frame.loc[frame["model_split_mode"] == "fix", "model_mode"].unique()):
        mode = ModelMode.parse(model_mode)
        if len(mode.letters) == 2 and sum(mode.proportions) == 10:
            pairs.setdefault("-".join(mode.letters), []).append((model_mode, mode.proportions[0] / 10))
    return pairs


def _single_mode(frame: pd.DataFrame, letter: str) -> str | None:
    singles = sorted(
        m
        for m in frame.loc[frame["model_split_mode"] == "fix", "model_mode"].unique()
        if ModelMode.parse(m).letters == (letter,)
    )
    return singles[0] if singles else None


def interpolation_table(stats: pd.DataFrame, dataset: str, split: str) -> Table | None:
    """Global (and local) accuracy as a growing share of clients trains only the smaller Y (fix mode)."""
    frame = global_rows(baseline(stats[(stats["dataset"] == dataset) & (stats["data_split_mode"] == split)]))
    pairs = _interpolation_pairs(frame)
    if not pairs:
        return None
    local = local_metric(dataset) if is_non_iid(split) else None
    rows = []

    def add(pair: str, model_mode: str, share: float) -> None:
        runs = frame[(frame["model_mode"] == model_mode) & (frame["model_split_mode"] == "fix")]
        first = runs.iloc[0]
        row = {"pair": pair, "model_mode": model_mode, "share_x": share}
        row["params"] = mode_cost(first["model"], first["resnet_blocks"], model_mode, dataset)["params"]
        row["global_mean"], row["global_std"], row["global_n"] = _value(runs, global_metric(dataset))
        row["local_mean"], row["local_std"], row["local_n"] = _value(runs, local)
        row["_paper_global"] = published(first, global_metric(dataset))
        row["_paper_local"] = published(first, local) if local is not None else None
        rows.append(row)

    for pair in sorted(pairs, key=lambda p: tuple(letter_order(x) for x in p.split("-"))):
        x, y = pair.split("-")
        if (top := _single_mode(frame, x)) is not None:
            add(pair, top, 1.0)
        for model_mode, share in sorted(pairs[pair], key=lambda item: -item[1]):
            add(pair, model_mode, share)
        if (bottom := _single_mode(frame, y)) is not None:
            add(pair, bottom, 0.0)
    if (alone := _single_mode(frame, "e")) is not None:
        add("e", alone, 1.0)
    raw = pd.DataFrame(rows)
    word = metric_word(dataset)
    table = pd.DataFrame(
        {
            "Pair": raw["pair"],
            "Model": raw["model_mode"],
            "Share of X (%)": (raw["share_x"] * 100).round().astype(int).astype(str),
            "Params": raw["params"].map(fmt_params),
            f"Global {word}": _acc(raw, "global"),
        }
    )
    if local is not None:
        table[f"Local {word}"] = _acc(raw, "local")
    table, raw, notes = paper_columns(
        table, raw, {"global": (f"Global {word}", "Global"), "local": (f"Local {word}", "Local")}
    )
    caption = f"{dataset} {split}: interpolation between global rate X and smaller rate Y (fix mode)."
    if is_non_iid(split):
        caption += (
            " In fix mode the first clients hold rate X (the reference's assignment); under a label skew a few"
            " such clients hold only some labels, and the channels only X has learn those labels alone, so with"
            " a small share of X the global model at rate X can score below rate Y alone (docs/default-grid.md)."
        )
    return Table(f"interpolation_{dataset}_{split}", table, raw, caption, group="Pair", notes=notes)


def ablation_table(stats: pd.DataFrame, dataset: str, split: str) -> Table | None:
    """Table 2: configurations that differ only in norm, scaler or masked loss; absent if none do."""
    frame = stats[(stats["dataset"] == dataset) & (stats["data_split_mode"] == split) & (stats["fed"] == 1)]
    frame = global_rows(most_common_population(frame))
    if frame.empty:
        return None
    rows = []
    for (model_mode, split_mode), group in frame.groupby(["model_mode", "model_split_mode"], sort=True):
        variants = group[["norm", "scale", "mask"]].drop_duplicates()
        if len(variants) < 2:
            continue
        for norm, scale, mask in variants.itertuples(index=False):
            runs = group[(group["norm"] == norm) & (group["scale"] == scale) & (group["mask"] == mask)]
            row = {"model_mode": model_mode, "model_split_mode": split_mode, "norm": norm, "scale": scale}
            row["mask"] = mask
            row["global_letter"] = runs.iloc[0]["global_letter"]
            row["local_mean"], row["local_std"], row["local_n"] = _value(runs, local_metric(dataset))
            row["global_mean"], row["global_std"], row["global_n"] = _value(runs, global_metric(dataset))
            row["_paper_local"] = published(runs.iloc[0], local_metric(dataset), ("table2",))
            row["_paper_global"] = published(runs.iloc[0], global_metric(dataset), ("table2",))
            rows.append(row)
    if not rows:
        return None
    raw = pd.DataFrame(rows)
    order = raw.assign(
        _g=raw["global_letter"].map(letter_order),
        _l=raw["model_mode"].map(lambda m: len(ModelMode.parse(m).letters)),
        _n=raw["norm"].map(lambda n: NORM_ORDER.get(n, 9)),
    )
    raw = (
        order.sort_values(["_g", "_l", "model_mode", "model_split_mode", "mask", "scale", "_n"], kind="stable")
        .drop(columns=["_g", "_l", "_n"])
        .reset_index(drop=True)
    )
    word = metric_word(dataset)
    table = pd.DataFrame(
        {
            "Model": raw["model_mode"],
            "Mode": raw["model_split_mode"],
            "Norm": raw["norm"],
            "Scaler": raw["scale"].astype(str),
            "Masked CE": raw["mask"].astype(str),
        }
    )
    if local_metric(dataset) is not None:
        table[f"Local {word}"] = _acc(raw, "local")
    table[f"Global {word}"] = _acc(raw, "global")
    table, raw, notes = paper_columns(
        table, raw, {"local": (f"Local {word}", "Local"), "global": (f"Global {word}", "Global")}
    )
    caption = f"{dataset} {split}: ablation of normalization, scaler and masked cross-entropy."
    return Table(f"ablation_{dataset}_{split}", table, raw, caption, notes=notes)


def submodel_table(stats: pd.DataFrame, dataset: str, split: str) -> Table | None:
    """The global model evaluated at every rate a..e, per configuration: what the reference never measured."""
    metric = global_metric(dataset)
    frame = stats[(stats["dataset"] == dataset) & (stats["data_split_mode"] == split) & (stats["metric"] == metric)]
    if frame.empty:
        return None
    keys = ["control", "model_mode", "model_split_mode", "norm", "scale", "mask", "num_users", "frac", "global_letter"]
    rows = []
    for key, group in frame.groupby(keys, sort=True):
        row = dict(zip(keys, key, strict=True))
        by_letter = group.set_index("letter")
        row["n_seeds"] = int(group["n"].max())
        for letter in LETTERS:
            row[letter] = float(by_letter.loc[letter, "mean"]) if letter in by_letter.index else float("nan")
            row[f"{letter}_std"] = float(by_letter.loc[letter, "std"]) if letter in by_letter.index else float("nan")
        rows.append(row)
    raw = pd.DataFrame(rows)
    raw = (
        raw.assign(_g=raw["global_letter"].map(letter_order))
        .sort_values(["_g", "model_split_mode", "model_mode", "norm", "scale", "mask", "control"], kind="stable")
        .drop(columns=["_g"])
        .reset_index(drop=True)
    )
    table = pd.DataFrame(
        {
            "Control": raw["control"],
            "Model": raw["model_mode"],
            "Mode": raw["model_split_mode"],
        }
    )
    for letter in LETTERS:
        table[letter] = [
            fmt_mean_std(m, s, n) for m, s, n in zip(raw[letter], raw[f"{letter}_std"], raw["n_seeds"], strict=True)
        ]
    caption = f"{dataset} {split}: the final global model's {metric} evaluated at each rate a..e."
    return Table(f"submodels_{dataset}_{split}", table, raw, caption)


def all_tables(stats: pd.DataFrame) -> list[Table]:
    """Every table the runs support, in a fixed order (dataset, then kind, then split)."""
    tables: list[Table] = []
    for dataset in sorted(stats["dataset"].unique()) if not stats.empty else []:
        splits = sorted(stats.loc[stats["dataset"] == dataset, "data_split_mode"].unique())
        builders = [lambda s, d=dataset: combination_table(s, d)]
        for split in splits:
            builders.append(lambda s, d=dataset, p=split: interpolation_table(s, d, p))
            builders.append(lambda s, d=dataset, p=split: ablation_table(s, d, p))
            builders.append(lambda s, d=dataset, p=split: submodel_table(s, d, p))
        tables += [t for t in (build(stats) for build in builders) if t is not None]
    return tables

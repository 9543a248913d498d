"""Method comparison: HeteroFL against FedRolex, Federated Dropout, FedEcover and FjORD on the same configurations.

``tables/methods_{D}_{S}`` exists only when ``runs.csv`` holds more than one method for a dataset and data split.
It has one section per model configuration (``model_split_mode model_mode``, e.g. ``dynamic a1-b1-c1-d1-e1``)
that more than one method ran; rows are methods, columns the evaluated rate a..e for the Global metric (and the
Local one on non-IID splits): mean ± std over seeds, the best mean per column in bold (higher accuracy, lower
perplexity or loss). Below the method rows, one ``{method} - HeteroFL`` row per method gives the paired
difference to HeteroFL: per seed the method's value minus HeteroFL's on the same seed and configuration, then
the mean difference and its 95 % Student-t interval over the paired seeds (the difference alone, marked
``n=1``, when only one seed pairs).

A ``runs.csv`` without a ``method`` column (written before methods existed) is all HeteroFL. When a ``run``
column (run name, ``{control}+{tag}...``) is present, its tags other than the method and the ResNet depth name a
method variant (FjORD with ``+scaler`` becomes the row ``FjORD (scaler)``).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pandas as pd

from heterofl.identity import tags_of
from heterofl.io import write_csv, write_text
from heterofl.methods.registry import METHOD_NAMES, METHODS, REFERENCE
from heterofl.report.formatting import MISSING, fmt_mean_std
from heterofl.report.output import latex_escape, notes_latex, notes_markdown
from heterofl.report.seed_stats import LETTERS, global_metric, is_non_iid, letter_order, local_metric, metric_word
from heterofl.report.tables import Table
from heterofl.results import higher_is_better

log = logging.getLogger(__name__)

METHOD_ORDER = METHOD_NAMES
METHOD_LABELS = {name: spec.label for name, spec in METHODS.items()}
CONFIG = ["dataset", "model", "resnet_blocks", "control"]
"""A model configuration as methods share it: the run name minus the method tags is the control string."""
SECTION_FIELDS = ("fed", "num_users", "frac", "norm", "scale", "mask", "model", "resnet_blocks")
"""Fields named in a section title only when they differ between the configurations of one table."""
KINDS = ("Global", "Local")
LEVEL = 0.95


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (the 95 % two-sided interval's factor)."""
    from scipy.stats import t

    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(t.ppf(0.5 + LEVEL / 2, df))


def paired_interval(differences: list[float]) -> tuple[float, float, float, int]:
    """Mean difference, lower and upper 95 % t-interval bounds (NaN with one value), and the number of pairs."""
    n = len(differences)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(differences) / n
    if n == 1:
        return mean, math.nan, math.nan, 1
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


def run_variant(run: object, method: str) -> str:
    """The run name's tags other than its method and ResNet depth (``feddyn0.1``, ``server-sgd``, ...): a variant
    of the method, which tables keep apart from the plain method."""
    if not isinstance(run, str) or "+" not in run:
        return ""
    tags = [t for t in tags_of(run) if t != method and not re.fullmatch(r"blocks\d+", t)]
    return "+".join(tags)


def with_methods(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``method`` (absent or empty: heterofl), ``variant`` and the row ``label`` of each run."""
    method = runs["method"].fillna(REFERENCE).astype(str) if "method" in runs.columns else REFERENCE
    out = runs.assign(method=method)
    if "run" in out.columns:
        variant = [run_variant(r, m) for r, m in zip(out["run"], out["method"], strict=True)]
    else:
        variant = [""] * len(out)
    labels = [METHOD_LABELS.get(m, m) + (f" ({v})" if v else "") for m, v in zip(out["method"], variant, strict=True)]
    return out.assign(variant=variant, label=labels)


def _label_order(frame: pd.DataFrame) -> list[str]:
    pairs = frame[["method", "variant", "label"]].drop_duplicates()
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    keyed = sorted(pairs.itertuples(index=False), key=lambda p: (rank.get(p[0], len(rank)), p[0], p[1]))
    return [p[2] for p in keyed]


def _section_titles(configs: pd.DataFrame) -> dict[tuple, str]:
    """``model_split_mode model_mode``, plus any field that differs between the table's configurations."""
    varying = [f for f in SECTION_FIELDS if f in configs.columns and configs[f].astype(str).nunique() > 1]
    titles = {}
    for row in configs.itertuples(index=False):
        row = row._asdict()
        title = f"{row['model_split_mode']} {row['model_mode']}"
        if varying:
            title += " (" + ", ".join(f"{f}={row[f]}" for f in varying) + ")"
        titles[tuple(row[k] for k in CONFIG)] = title
    return titles


def method_frame(runs: pd.DataFrame, value: str, dataset: str, split: str) -> pd.DataFrame:
    """Per configuration, method label, seed, kind and letter: ``value``, for configurations >= 2 methods ran.

    Empty unless more than one method ran on this dataset and split. Columns: the :data:`CONFIG` keys,
    ``section``, ``model_mode``, ``model_split_mode``, ``global_letter``, ``method``, ``variant``, ``label``,
    ``seed``, ``kind`` (Global/Local), ``metric``, ``letter``, ``value``.
    """
    frame = with_methods(runs)
    frame = frame[(frame["dataset"] == dataset) & (frame["data_split_mode"] == split)]
    if frame["method"].nunique() < 2:
        return pd.DataFrame()
    metrics = {global_metric(dataset): "Global"}
    if is_non_iid(split) and local_metric(dataset) is not None:
        metrics[local_metric(dataset)] = "Local"
    frame = frame[frame["metric"].isin(metrics)]
    shared = frame.groupby(CONFIG, dropna=False)["label"].transform("nunique")
    frame = frame[shared >= 2]
    if frame.empty:
        return pd.DataFrame()
    extra = [f for f in SECTION_FIELDS if f not in CONFIG]
    configs = frame[[*CONFIG, "model_mode", "model_split_mode", *extra]].drop_duplicates(CONFIG)
    titles = _section_titles(configs)
    keys = [*CONFIG, "model_mode", "model_split_mode", "global_letter", "method", "variant", "label"]
    keys += ["seed", "metric", "letter"]
    counts = frame.groupby(keys, dropna=False)[value].transform("size")
    if (counts > 1).any():
        log.warning("%s %s: %d duplicate run rows averaged", dataset, split, int((counts > 1).sum()))
    out = frame.groupby(keys, dropna=False, sort=False)[value].mean().reset_index(name="value")
    return out.assign(
        kind=out["metric"].map(metrics),
        section=[titles[k] for k in out[CONFIG].itertuples(index=False, name=None)],
    )


def _stats(frame: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
    """One raw row per section, label, kind and letter: mean, std, n, best flag, paired difference to HeteroFL."""
    keys = ["section", *CONFIG, "model_mode", "model_split_mode", "global_letter", "kind", "metric", "letter"]
    rows = []
    for key, group in frame.groupby(keys, dropna=False, sort=False):
        base = dict(zip(keys, key, strict=True))
        reference = group[group["label"] == METHOD_LABELS[REFERENCE]].set_index("seed")["value"]
        for (method, variant, label), part in group.groupby(["method", "variant", "label"], sort=False):
            values = part.set_index("seed")["value"].dropna()
            row = base | {"method": method, "variant": variant, "label": label}
            row["mean"] = float(values.mean()) if len(values) else math.nan
            row["std"] = float(values.std()) if len(values) > 1 else math.nan
            row["n"] = len(values)
            row["seeds"] = " ".join(str(s) for s in sorted(values.index))
            seeds = sorted(set(values.index) & set(reference.dropna().index))
            is_reference = label == METHOD_LABELS[REFERENCE]
            differences = [] if is_reference else [float(values[s] - reference[s]) for s in seeds]
            row["diff_mean"], row["diff_low"], row["diff_high"], row["diff_n"] = paired_interval(differences)
            rows.append(row)
    raw = pd.DataFrame(rows)
    raw["higher_is_better"] = raw["metric"].map(higher_is_better)
    best = raw.groupby(["section", "kind", "letter"], sort=False)["mean"].transform(
        lambda s: s.max() if higher_is_better(str(raw.loc[s.index[0], "metric"])) else s.min()
    )
    raw["best"] = raw["mean"].notna() & raw["mean"].eq(best)
    section_order = raw[["section", "global_letter", "model_split_mode", "model_mode"]].drop_duplicates("section")
    section_order = section_order.assign(_g=section_order["global_letter"].map(letter_order))
    section_order = section_order.sort_values(["_g", "model_split_mode", "model_mode", "section"])["section"].tolist()
    labels = _label_order(raw)
    raw = raw.assign(
        _s=raw["section"].map(section_order.index),
        _m=raw["label"].map(labels.index),
        _k=raw["kind"].map(KINDS.index),
        _l=raw["letter"].map(letter_order),
    )
    raw = raw.sort_values(["_s", "_m", "_k", "_l"]).drop(columns=["_s", "_m", "_k", "_l"]).reset_index(drop=True)
    return raw.assign(dataset=dataset, data_split_mode=split)


def _fmt_difference(mean: float, low: float, high: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return MISSING
    if n == 1:
        return f"{mean:+.2f} (n=1)"
    return f"{mean:+.2f} [{low:.2f}, {high:.2f}]"


def _wide(raw: pd.DataFrame) -> pd.DataFrame:
    """The formatted table: per section the method rows (best in ``**bold**``) then the difference rows."""
    columns = [(k, x) for k in KINDS for x in LETTERS if ((raw["kind"] == k) & (raw["letter"] == x)).any()]
    rows = []
    reference = METHOD_LABELS[REFERENCE]
    for section in raw["section"].unique():
        part = raw[raw["section"] == section]
        labels = list(dict.fromkeys(part["label"]))
        cells = {(r.label, r.kind, r.letter): r for r in part.itertuples(index=False)}
        for label in labels:
            row = {"Configuration": section, "Method": label}
            for kind, letter in columns:
                r = cells.get((label, kind, letter))
                text = MISSING if r is None else fmt_mean_std(r.mean, r.std, r.n)
                row[f"{kind} {letter}"] = f"**{text}**" if r is not None and r.best else text
            rows.append(row)
        if reference not in labels:
            continue
        for label in labels:
            if label == reference:
                continue
            row = {"Configuration": section, "Method": f"{label} - {reference}"}
            for kind, letter in columns:
                r = cells.get((label, kind, letter))
                row[f"{kind} {letter}"] = (
                    MISSING if r is None else _fmt_difference(r.diff_mean, r.diff_low, r.diff_high, r.diff_n)
                )
            rows.append(row)
    return pd.DataFrame(rows)


def method_table(runs: pd.DataFrame, value: str, dataset: str, split: str) -> Table | None:
    """The method comparison of one dataset and data split (see the module docstring); None with one method."""
    frame = method_frame(runs, value, dataset, split)
    if frame.empty:
        return None
    raw = _stats(frame, dataset, split)
    word = metric_word(dataset).lower()
    direction = "higher" if higher_is_better(global_metric(dataset)) else "lower"
    local = " and local (Local, clients' own labels)" if (raw["kind"] == "Local").any() else ""
    caption = (
        f"{dataset} {split}: methods compared per model configuration. Global{local} {word} of the final "
        f"global model evaluated at rate a..e, {value} per run, mean ± std over seeds; bold: best mean per "
        f"column ({direction} is better). Rows 'X - HeteroFL': X minus HeteroFL paired by seed, mean difference "
        f"[95 % t-interval over seeds] ('n=1': one paired seed, no interval)."
    )
    return Table(f"methods_{dataset}_{split}", _wide(raw), raw, caption, group="Configuration")


def method_tables(runs: pd.DataFrame, value: str) -> list[Table]:
    """Every method-comparison table ``runs`` supports, by dataset then data split."""
    if runs.empty:
        return []
    pairs = runs[["dataset", "data_split_mode"]].drop_duplicates().sort_values(["dataset", "data_split_mode"])
    tables = [method_table(runs, value, d, s) for d, s in pairs.itertuples(index=False)]
    return [t for t in tables if t is not None]


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _latex_cell(text: str) -> str:
    return _BOLD.sub(r"\\textbf{\1}", latex_escape(text))


def write_method_table(folder: Path, table: Table) -> list[Path]:
    """``{stem}.csv`` (no markup), ``.md`` (best in ``**bold**``), ``.tex`` (``\\textbf``) and ``{stem}_raw.csv``.

    One Markdown/LaTeX section per configuration, as :func:`heterofl.report.output.write_table` does.
    """
    folder = Path(folder)
    paths = [folder / f"{table.stem}.{ext}" for ext in ("csv", "md", "tex")] + [folder / f"{table.stem}_raw.csv"]
    write_csv(paths[0], table.table.map(lambda c: _BOLD.sub(r"\1", c) if isinstance(c, str) else c))
    write_csv(paths[3], table.raw)
    markdown, latex = [f"{table.caption}\n"], []
    for section, part in table.table.groupby(table.group, sort=False):
        part = part.drop(columns=[table.group])
        markdown.append(f"## {section}\n")
        markdown.append(part.to_markdown(index=False, disable_numparse=True) + "\n")
        tex = part.map(_latex_cell)
        tex.columns = [latex_escape(c) for c in tex.columns]
        latex.append(
            tex.to_latex(
                index=False,
                escape=False,
                caption=latex_escape(f"{table.caption} ({section})"),
                label=f"tab:{table.stem}:{section.replace(' ', '_')}",
            )
        )
    write_text(paths[1], "\n".join(markdown) + notes_markdown(table.notes))
    write_text(paths[2], "\n".join(latex).replace("±", r"$\pm$") + notes_latex(table.notes))
    return paths

"""The paper's published numbers, shown beside ours in the tables ("Paper" and "Δ" = ours - paper columns).

Paper: Diao, Ding, Tarokh, "HeteroFL: Computation and Communication Efficient Federated Learning for
Heterogeneous Clients", ICLR 2021, https://arxiv.org/abs/2010.01264. The numbers were copied from the authors'
own material in their repository (github.com/diaoenmao/HeteroFL-Computation-and-Communication-Efficient-
Federated-Learning-for-Heterogeneous-Clients), as transcribed in the project's specification (section 11):

* ``table1``: "Table 1. Results of combination of various computation complexity levels for CIFAR10 dataset"
  (the ICLR slides ``doc/ICLR/HeteroFL Presentation.pptm``, slide 9; the paper's CIFAR10 table; its
  params/FLOPs columns are those of ResNet18 with blocks [1,1,1,2]). Single rates are fix runs, combinations
  dynamic; IID global accuracy, non-IID-2 local and global accuracy.
* ``table2``: "Table 2. Ablation Study of Non-IID scenarios" (same slides, slide 10): MNIST and CIFAR10,
  non-IID-2, local/global accuracy for norm x scaler x masked loss; single rates fix, ``a-e`` dynamic.
* ``figure``: the README's interpolation figures ``assest/{MNIST,CIFAR10,WikiText2}_interp_iid.png``, read off
  the plots (about +-0.05, hence shown with ``≈``): IID global accuracy (perplexity for WikiText2) of the
  single rates a..d and of MNIST's a1-e9. The other curve points cannot be tied to one control string.

The paper's MNIST and WikiText2 tables are not in that material, so MNIST has only the ablation and figure
values and WikiText2 only the figure values; nothing here is estimated.

An entry matches a row of our tables when the run has the reference's control string: the dataset with the
paper's model (conv, ResNet18 [1,1,1,2], transformer), fed 1, 100 clients, fraction 0.1, the split, the model
mode (as a client population: ``a1-e1`` = ``a5-e5``) with its split mode (fix or dynamic, either for one rate),
norm, scaler (any for one rate: the Scaler is the identity there) and masked loss. Hyperparameters (rounds,
lr, ...) are not in the summary and are not compared; ``config/paper.yaml`` uses the reference's. MNIST5k and
other reduced datasets never match. The paper reports best-round test numbers (``report_metric: best``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from heterofl.rates import ModelMode
from heterofl.report.formatting import MISSING

SOURCES = {
    "table1": "Table 1 (CIFAR10 combinations)",
    "table2": "Table 2 (non-IID ablation)",
    "figure": "≈ read off the README interpolation figure (about ±0.05)",
}
PAPER_MODEL = {"MNIST": ("conv", None), "CIFAR10": ("resnet18", "1-1-1-2"), "WikiText2": ("transformer", None)}
POPULATION = {"fed": 1, "num_users": 100, "frac": 0.1}
GA, LA, GP = "Global-Accuracy", "Local-Accuracy", "Global-Perplexity"


@dataclass(frozen=True)
class Published:
    """One published number and where it comes from."""

    value: float
    source: str
    decimals: int

    def text(self) -> str:
        approx = "≈" if self.source == "figure" else ""
        return f"{approx}{self.value:.{self.decimals}f}"


# (dataset, split, model_mode, split mode, norm, scale, mask, metric) -> value. Scale None: any (one rate).
_Key = tuple[str, str, str, str, str, int | None, int, str]

# table1: IID global, non-IID-2 local, non-IID-2 global (CIFAR10, bn, scaler, masked loss).
_TABLE1 = {
    "a1": (91.19, 92.38, 56.88),
    "a1-e1": (90.29, 92.10, 59.11),
    "a1-b1-c1-d1-e1": (88.83, 92.49, 61.64),
    "b1": (89.82, 93.83, 55.45),
    "b1-e1": (89.10, 90.68, 59.81),
    "b1-c1-d1-e1": (87.92, 91.90, 59.10),
    "c1": (87.55, 91.09, 55.12),
    "c1-e1": (86.88, 91.83, 63.47),
    "c1-d1-e1": (85.79, 91.49, 55.42),
    "d1": (84.21, 90.77, 61.13),
    "d1-e1": (82.93, 90.89, 56.16),
    "e1": (77.09, 89.62, 54.16),
}
# table2 (non-iid-2): (model_mode, norm, scale, mask) -> (MNIST local, MNIST global, CIFAR10 local, CIFAR10 global).
_TABLE2 = {
    ("a1", "none", None, 0): (97.4, 97.4, 42.6, 42.8),
    ("a1", "bn", None, 0): (99.4, 99.4, 53.4, 53.7),
    ("a1", "none", None, 1): (99.7, 95.6, 91.7, 58.5),
    ("a1", "in", None, 1): (99.8, 98.7, 88.4, 43.7),
    ("a1", "gn", None, 1): (99.7, 98.3, 91.2, 58.2),
    ("a1", "ln", None, 1): (99.8, 98.3, 89.9, 54.2),
    ("a1", "bn", None, 1): (99.9, 98.6, 92.1, 59.2),
    ("e1", "none", None, 0): (96.2, 96.0, 38.9, 38.2),
    ("e1", "bn", None, 0): (90.1, 90.1, 40.7, 40.4),
    ("e1", "none", None, 1): (99.5, 96.5, 86.6, 48.9),
    ("e1", "in", None, 1): (98.5, 89.8, 83.7, 37.0),
    ("e1", "gn", None, 1): (99.2, 92.2, 83.5, 36.7),
    ("e1", "ln", None, 1): (99.3, 94.0, 82.6, 40.0),
    ("e1", "bn", None, 1): (99.3, 94.2, 90.1, 52.9),
    ("a1-e1", "none", 0, 0): (96.8, 96.9, 37.8, 37.4),
    ("a1-e1", "bn", 0, 0): (99.2, 99.2, 41.0, 41.3),
    ("a1-e1", "none", 0, 1): (99.4, 95.7, 89.1, 52.8),
    ("a1-e1", "bn", 0, 1): (99.8, 98.0, 90.7, 57.7),
    ("a1-e1", "none", 1, 0): (97.3, 97.3, 34.6, 34.4),
    ("a1-e1", "bn", 1, 0): (99.3, 99.3, 46.0, 46.7),
    ("a1-e1", "none", 1, 1): (99.5, 95.8, 90.3, 55.6),
    ("a1-e1", "in", 1, 1): (99.8, 98.7, 87.0, 34.4),
    ("a1-e1", "gn", 1, 1): (99.5, 96.2, 88.7, 49.7),
    ("a1-e1", "ln", 1, 1): (99.5, 96.2, 78.5, 25.0),
    ("a1-e1", "bn", 1, 1): (99.8, 98.2, 92.8, 60.4),
}
# figure (IID, bn, scaler, masked loss): (dataset, model_mode, split mode) -> global accuracy or perplexity.
_FIGURE = {
    ("MNIST", "a1", "fix"): 99.53,
    ("MNIST", "b1", "fix"): 99.53,
    ("MNIST", "c1", "fix"): 99.35,
    ("MNIST", "d1", "fix"): 99.17,
    ("MNIST", "a1-e9", "fix"): 99.03,
    ("WikiText2", "a1", "fix"): 3.37,
    ("WikiText2", "b1", "fix"): 3.46,
    ("WikiText2", "c1", "fix"): 3.62,
    ("WikiText2", "d1", "fix"): 3.83,
}


def _split_mode(model_mode: str) -> str:
    return "fix" if len(ModelMode.parse(model_mode).letters) == 1 else "dynamic"


def _entries() -> dict[str, dict[_Key, Published]]:
    out: dict[str, dict[_Key, Published]] = {name: {} for name in SOURCES}
    for mode, values in _TABLE1.items():
        scale = None if len(ModelMode.parse(mode).letters) == 1 else 1
        for split, metric, value in zip(("iid", "non-iid-2", "non-iid-2"), (GA, LA, GA), values, strict=True):
            key = ("CIFAR10", split, mode, _split_mode(mode), "bn", scale, 1, metric)
            out["table1"][key] = Published(value, "table1", 2)
    for (mode, norm, scale, mask), values in _TABLE2.items():
        for dataset, local, glob in (("MNIST", *values[:2]), ("CIFAR10", *values[2:])):
            for metric, value in ((LA, local), (GA, glob)):
                key = (dataset, "non-iid-2", mode, _split_mode(mode), norm, scale, mask, metric)
                out["table2"][key] = Published(value, "table2", 1)
    for (dataset, mode, split_mode), value in _FIGURE.items():
        scale = None if len(ModelMode.parse(mode).letters) == 1 else 1
        metric = GP if dataset == "WikiText2" else GA
        out["figure"][(dataset, "iid", mode, split_mode, "bn", scale, 1, metric)] = Published(value, "figure", 2)
    return out


ENTRIES = _entries()


def _population(model_mode: str) -> tuple:
    mode = ModelMode.parse(model_mode)
    total = sum(mode.proportions)
    return mode.letters, tuple(round(p / total, 9) for p in mode.proportions)


def _same_number(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b))
    except (TypeError, ValueError):
        return False


def published(
    config: Mapping, metric: str, sources: tuple[str, ...] = ("table1", "table2", "figure")
) -> Published | None:
    """The first published value (in ``sources`` order) for a run configuration (a row of ``runs.csv`` or
    of seed statistics) and metric, or None when the paper has no number for exactly that configuration."""
    dataset = str(config["dataset"])
    if dataset not in PAPER_MODEL:
        return None
    model, blocks = PAPER_MODEL[dataset]
    if str(config["model"]) != model or (blocks is not None and str(config["resnet_blocks"]) != blocks):
        return None
    if not all(_same_number(config[name], wanted) for name, wanted in POPULATION.items()):
        return None
    population = _population(str(config["model_mode"]))
    single = len(population[0]) == 1
    for source in sources:
        for key, entry in ENTRIES[source].items():
            k_dataset, k_split, k_mode, k_split_mode, k_norm, k_scale, k_mask, k_metric = key
            if (k_dataset, k_split, k_metric, k_norm) != (dataset, config["data_split_mode"], metric, config["norm"]):
                continue
            if _population(k_mode) != population or not _same_number(config["mask"], k_mask):
                continue
            if not single and (
                k_split_mode != config["model_split_mode"] or not _same_number(config["scale"], k_scale)
            ):
                continue
            return entry
    return None


def paper_columns(
    table: pd.DataFrame, raw: pd.DataFrame, columns: Mapping[str, tuple[str, str]]
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Add "Paper X" and "Δ X" after each measured column that has at least one published match.

    ``raw`` carries, per measured prefix ``p`` in ``columns`` (``p -> (measured column, short label X)``), our
    ``{p}_mean`` and a temporary ``_paper_{p}`` (a :class:`Published` or None per row), which is dropped. Raw
    columns ``paper_{p}``, ``paper_{p}_source`` and ``diff_{p}`` (ours - paper) are added only where something
    matched, so tables without any published counterpart are unchanged. Returns the two frames and a note
    naming the sources used ("" notes when nothing matched).
    """
    table, raw = table.copy(), raw.copy()
    used: set[str] = set()
    for prefix, (measured, label) in columns.items():
        found = raw.pop(f"_paper_{prefix}") if f"_paper_{prefix}" in raw.columns else pd.Series(dtype=object)
        hits = [h if isinstance(h, Published) else None for h in found]
        if not any(hits):
            continue
        raw[f"paper_{prefix}"] = [h.value if h else float("nan") for h in hits]
        raw[f"paper_{prefix}_source"] = [h.source if h else "" for h in hits]
        raw[f"diff_{prefix}"] = raw[f"{prefix}_mean"] - raw[f"paper_{prefix}"]
        used |= {h.source for h in hits if h}
        paper_text = [h.text() if h else MISSING for h in hits]
        diff_text = [MISSING if pd.isna(d) else f"{d:+.2f}" for d in raw[f"diff_{prefix}"]]
        at = list(table.columns).index(measured) + 1
        table.insert(at, f"Paper {label}", paper_text)
        table.insert(at + 1, f"Δ {label}", diff_text)
    raw = raw.drop(columns=[c for c in raw.columns if c.startswith("_paper_")])
    if not used:
        return table, raw, ()
    names = "; ".join(SOURCES[s] for s in SOURCES if s in used)
    note = (
        "Paper: the value published for this control string (Diao et al., ICLR 2021, arXiv:2010.01264; "
        f"{names}), best-round test numbers; Δ = ours - paper."
    )
    return table, raw, (note,)

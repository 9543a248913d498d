"""Seed statistics, run selection and model cost: the shared vocabulary of every table and figure.

The paper reports the *global* model (the mode's first letter) of runs with sBN, the scaler and the
masked loss (``bn``, ``1``, ``1``); ablation variants are kept apart so they never mix into those rows.
"""

from __future__ import annotations

import pandas as pd

from heterofl.config import CONTROL_FIELDS
from heterofl.data.registry import dataset_spec, is_language
from heterofl.model_cost import combination_row, cost_table
from heterofl.models.registry import declared_spec
from heterofl.rates import ModelMode

LETTERS = ("a", "b", "c", "d", "e")
CONFIG_KEYS = ["dataset", "model", "control", *CONTROL_FIELDS, "global_letter", "resnet_blocks"]
BASELINE = {"fed": 1, "norm": "bn", "scale": 1, "mask": 1}


def global_metric(dataset: str) -> str:
    """The headline metric: perplexity for the language model, accuracy otherwise."""
    return "Global-Perplexity" if is_language(dataset) else "Global-Accuracy"


def local_metric(dataset: str) -> str | None:
    return None if is_language(dataset) else "Local-Accuracy"


def metric_word(dataset: str) -> str:
    return "Perplexity" if is_language(dataset) else "Accuracy"


def is_non_iid(split: str) -> bool:
    """Label-skewed splits: local metrics differ from global ones only there."""
    return split.startswith("non-iid") or split.startswith("dirichlet")


def non_iid_split(splits: list[str]) -> str | None:
    """The non-IID split a paper-style table shows: the paper's non-iid-2 if present, else the first."""
    candidates = sorted(s for s in set(splits) if is_non_iid(s))
    if not candidates:
        return None
    return "non-iid-2" if "non-iid-2" in candidates else candidates[0]


def seed_stats(runs: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean, sample std and count over seeds of ``value`` (final/best/mean_last_k) per config, letter, metric.

    With one seed the std is NaN, which the formatting shows as the mean alone.
    """
    keys = [*CONFIG_KEYS, "letter", "metric"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "mean", "std", "n"])
    grouped = runs.groupby(keys, sort=True, dropna=False)[value]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    return out


def global_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """Only the global model's numbers (the letter the mode lists first), as the paper reports."""
    return stats[stats["letter"] == stats["global_letter"]]


def baseline(stats: pd.DataFrame) -> pd.DataFrame:
    """Federated sBN + scaler + masked-loss runs, with the most common number of users and fraction."""
    mask = pd.Series(True, index=stats.index)
    for name, wanted in BASELINE.items():
        mask &= stats[name] == wanted
    chosen = stats[mask]
    return most_common_population(chosen)


def most_common_population(stats: pd.DataFrame) -> pd.DataFrame:
    """Keep one (num_users, frac) per dataset so two populations never share a table row."""
    if stats.empty:
        return stats
    parts = []
    for _, group in stats.groupby("dataset", sort=True):
        counts = group.groupby(["num_users", "frac"]).size().sort_values(ascending=False, kind="stable")
        num_users, frac = counts.index[0]
        parts.append(group[(group["num_users"] == num_users) & (group["frac"] == frac)])
    return pd.concat(parts)


def complexity(model: str, resnet_blocks: str, dataset: str | None = None) -> pd.DataFrame:
    """Per-letter Params/FLOPs/Space (the shipped table: no PyTorch needed), with the label count of ``dataset``,
    so that CIFAR100's ResNet18 is counted with its 100-way head; without it, the model's registry sizes."""
    classes = None
    if dataset is not None and "num_classes" in declared_spec(model).counting_kwargs():
        classes = dataset_spec(dataset).num_classes
    return cost_table(model, str(resnet_blocks), classes)


def mode_cost(model: str, resnet_blocks: str, model_mode: str, dataset: str | None = None) -> dict:
    """Proportion-weighted Params/FLOPs/Space and Ratio of a model_mode (spec 8, ``make_stats``)."""
    return combination_row(complexity(model, resnet_blocks, dataset), model_mode)


def normalized(model_mode: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Letters and probabilities: ``a1-e1`` and ``a5-e5`` describe the same client population."""
    mode = ModelMode.parse(model_mode)
    return mode.letters, tuple(round(p, 9) for p in mode.probabilities)


def equal_proportions(model_mode: str) -> bool:
    return len(set(ModelMode.parse(model_mode).proportions)) == 1


def letter_order(letter: str) -> int:
    return LETTERS.index(letter)

"""The files of one run folder and how their summaries are computed.

``history.csv``: one row per round (lr, train loss/accuracy, every evaluated rate's metrics, seconds per
phase, bytes and MACs of the round). ``eval.csv``: per rate and metric, the final value, the best value and
the mean of the last k evaluations. ``config.yaml``: the resolved configuration. ``model.pt``: the final
global parameters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from heterofl.rates import RATE_OF_LETTER

if TYPE_CHECKING:  # pandas on demand: the CLI's --help (which reads the run-file names here) stays fast
    import pandas as pd

RUN_KEY_PATTERN = "{dataset}/{model}/{run}/seed{seed}"
"""A run's folder below a results root's ``runs/`` (and its training log's path below ``logs/train/``), defined
once: the library fills it in (:func:`run_key_of`), the Snakemake rules use it as their wildcard pattern."""
RUN_FILES = {"config": "config.yaml", "history": "history.csv", "eval": "eval.csv", "model": "model.pt"}
CHECKPOINT = "checkpoint.pt"
FAILED = "FAILED"
DIVERGED = "DIVERGED"
"""A finished run whose loss exploded without NaN (``heterofl.divergence``): one line, the reason."""
_METRIC_COLUMN = re.compile(r"^([a-e])_(.+)$")
ACCOUNTING_COLUMNS = (
    "bytes_to_clients",
    "bytes_from_clients",
    "client_train_macs",
    "server_static_bn_macs",
    "server_eval_macs",
)
"""``history.csv``'s communication and compute of every round (``heterofl.accounting``). Optional when read:
runs trained before they were recorded lack them, and a run resumed across that change lacks them in the
rounds before the resume."""


def higher_is_better(metric: str) -> bool:
    return metric.endswith("Accuracy")


def summarize_history(history: pd.DataFrame, last_k: int) -> pd.DataFrame:
    """Long table (letter, rate, metric, final, best, mean_last_k) over the rounds that were evaluated."""
    rows = []
    for column in history.columns:
        match = _METRIC_COLUMN.match(column)
        if not match:
            continue
        letter, metric = match.groups()
        values = history[column].dropna()
        if values.empty:
            continue
        best = values.max() if higher_is_better(metric) else values.min()
        rows.append(
            {
                "letter": letter,
                "rate": RATE_OF_LETTER[letter],
                "metric": metric,
                "final": values.iloc[-1],
                "best": best,
                "mean_last_k": values.iloc[-last_k:].mean(),
                "evaluations": len(values),
                "last_k": min(last_k, len(values)),
            }
        )
    import pandas as pd

    return pd.DataFrame(
        rows, columns=["letter", "rate", "metric", "final", "best", "mean_last_k", "evaluations", "last_k"]
    )


def run_key_of(dataset: str, model: str, run: str, seed: int | str) -> str:
    """:data:`RUN_KEY_PATTERN` filled in: ``{dataset}/{model}/{run name}/seed{seed}``."""
    return RUN_KEY_PATTERN.format(dataset=dataset, model=model, run=run, seed=seed)


def run_dir(root: str | Path, dataset: str, model: str, name: str, seed: int) -> Path:
    """``{root}/`` + :data:`RUN_KEY_PATTERN`; ``name`` is the run name (``identity.run_name``), the control
    string for a default HeteroFL run."""
    return Path(root) / run_key_of(dataset, model, name, seed)

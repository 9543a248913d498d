"""Per-client statistics of a partition, as a table, a summary and a heatmap, to see how skewed a split is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from heterofl.data.partition import Partition
from heterofl.data.registry import DATASETS
from heterofl.errors import HeteroFLError

if TYPE_CHECKING:  # drawing a heatmap from a statistics CSV (the report path) needs no PyTorch
    from heterofl.data.datasets import Dataset

MAX_HEATMAP_ROWS = 100
PLOT_SUFFIXES = (".pdf", ".png")


def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def _check(partition: Partition, dataset: Dataset) -> None:
    if partition.dataset != dataset.name or partition.dataset_fingerprint != dataset.fingerprint():
        raise HeteroFLError(
            "partition",
            f"was made for dataset {partition.dataset}, not this {dataset.name}",
            f"a partition made from {dataset.name}",
        )


def _label_counts(partition: Partition, dataset: Dataset) -> np.ndarray:
    labels = dataset.train_y.numpy()
    return np.stack([np.bincount(labels[idx], minlength=dataset.num_classes) for idx in partition.train_indices])


def partition_statistics(partition: Partition, dataset: Dataset) -> pd.DataFrame:
    """One row per client: sizes, label count, train-label entropy (nats) and per-label train counts
    (WikiText2: token count and token entropy instead of per-label columns)."""
    _check(partition, dataset)
    rows = []
    if dataset.is_text:
        for user, idx in enumerate(partition.train_indices):
            import torch

            tokens = dataset.train_x[torch.from_numpy(idx)].reshape(-1)
            counts = torch.bincount(tokens, minlength=dataset.num_classes).numpy()
            rows.append(
                {
                    "client": user,
                    "n_train": len(idx),
                    "n_test": len(partition.test_indices[user]),
                    "n_labels": len(partition.label_sets[user]),
                    "entropy": _entropy(counts),
                    "n_tokens": int(tokens.numel()),
                }
            )
        return pd.DataFrame(rows)
    counts = _label_counts(partition, dataset)
    for user, idx in enumerate(partition.train_indices):
        row = {
            "client": user,
            "n_train": len(idx),
            "n_test": len(partition.test_indices[user]),
            "n_labels": len(partition.label_sets[user]),
            "entropy": _entropy(counts[user]),
        }
        row.update({f"label_{k}": int(c) for k, c in enumerate(counts[user])})
        rows.append(row)
    return pd.DataFrame(rows)


def write_partition_statistics(df: pd.DataFrame, csv_path: str | Path) -> None:
    """CSV without the pandas index, so it diffs cleanly between runs."""
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def summarize_statistics(df: pd.DataFrame) -> dict[str, float]:
    """Headline numbers of a statistics table: client count, samples per client, labels and entropy."""
    return {
        "clients": int(len(df)),
        "mean_train": float(df["n_train"].mean()),
        "min_train": int(df["n_train"].min()),
        "max_train": int(df["n_train"].max()),
        "mean_test": float(df["n_test"].mean()),
        "mean_labels": float(df["n_labels"].mean()),
        "mean_entropy": float(df["entropy"].mean()),
    }


def plot_partition_heatmap(partition: Partition, dataset: Dataset, path: str | Path) -> None:
    """Clients x labels heatmap of train counts (first 100 clients); PDF or PNG by the path's suffix."""
    if dataset.is_text:
        images = ", ".join(name for name, spec in DATASETS.items() if not spec.is_language)
        raise HeteroFLError("dataset", f"{dataset.name} has no label histogram to plot", images)
    _check(partition, dataset)
    counts = pd.DataFrame(_label_counts(partition, dataset), columns=[str(k) for k in range(dataset.num_classes)])
    plot_label_heatmap(counts, f"{dataset.name} {partition.scheme}", path)


def plot_heatmap_from_statistics(stats_csv: str | Path, path: str | Path, title: str = "") -> None:
    """The same heatmap from a statistics CSV, so figures regenerate from cached results without data."""
    frame = pd.read_csv(stats_csv)
    columns = [c for c in frame.columns if c.startswith("label_")]
    if not columns:
        raise HeteroFLError("statistics", f"{stats_csv} has no label_<k> columns", "a partition statistics CSV")
    counts = frame[columns].rename(columns=lambda c: c.removeprefix("label_"))
    plot_label_heatmap(counts, title or Path(stats_csv).stem, path)


def plot_label_heatmap(counts: pd.DataFrame, title: str, path: str | Path) -> None:
    """Draw clients x labels counts (at most 100 clients shown) with seaborn; PDF or PNG by suffix."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise HeteroFLError("path", f"{path} has an unsupported suffix {path.suffix!r}", ", ".join(PLOT_SUFFIXES))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    total = len(counts)
    frame = counts.iloc[:MAX_HEATMAP_ROWS]
    fig, ax = plt.subplots(figsize=(6, 2 + 0.08 * len(frame)))
    try:
        sns.heatmap(  # the scale starts at 0: an even (IID) split looks even, not a patchwork of small differences
            frame,
            ax=ax,
            cmap="viridis",
            vmin=0,
            cbar_kws={"label": "train samples"},
            yticklabels=max(1, len(frame) // 20),
        )
        shown = f"first {len(frame)} of {total}" if total > len(frame) else "all"
        ax.set(xlabel="label", ylabel=f"client ({shown})", title=title)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)

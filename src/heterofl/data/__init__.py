"""Datasets, client partitions and partition statistics."""

from heterofl.data.augment import augment_batch, crop_flip
from heterofl.data.datasets import DATASET_NAMES, Dataset, load_dataset
from heterofl.data.partition import (
    PARTITION_VARIANTS,
    Partition,
    make_partition,
    read_partition,
    write_partition,
)
from heterofl.data.stats import (
    partition_statistics,
    plot_heatmap_from_statistics,
    plot_partition_heatmap,
    summarize_statistics,
    write_partition_statistics,
)

__all__ = [
    "DATASET_NAMES",
    "PARTITION_VARIANTS",
    "Dataset",
    "Partition",
    "augment_batch",
    "crop_flip",
    "load_dataset",
    "make_partition",
    "partition_statistics",
    "plot_heatmap_from_statistics",
    "plot_partition_heatmap",
    "read_partition",
    "summarize_statistics",
    "write_partition",
    "write_partition_statistics",
]

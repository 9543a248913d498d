"""Datasets, client partitions and partition statistics.

Names are imported on first use (PEP 562): the pipeline and the report read the dataset table and draw
heatmaps from statistics files without loading the data code (and PyTorch).
"""

from __future__ import annotations

from heterofl.lazy import lazy_names

_PUBLIC = {
    "DATASET_NAMES": "heterofl.data.datasets",
    "Dataset": "heterofl.data.datasets",
    "load_dataset": "heterofl.data.datasets",
    "augment_batch": "heterofl.data.augment",
    "crop_flip": "heterofl.data.augment",
    "PARTITION_VARIANTS": "heterofl.data.partition",
    "Partition": "heterofl.data.partition",
    "make_partition": "heterofl.data.partition",
    "read_partition": "heterofl.data.partition",
    "write_partition": "heterofl.data.partition",
    "partition_statistics": "heterofl.data.stats",
    "plot_heatmap_from_statistics": "heterofl.data.stats",
    "plot_partition_heatmap": "heterofl.data.stats",
    "summarize_statistics": "heterofl.data.stats",
    "write_partition_statistics": "heterofl.data.stats",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_names(globals(), _PUBLIC)

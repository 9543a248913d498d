"""The report's figures: one module per figure, each declared once in :data:`FIGURES` (:mod:`.registry`).

A new figure is a module here with a ``draw(inputs, dataset, split, folder)`` function and one
:class:`FigureSpec` line in :mod:`.registry`; captions, ``index.md``, the Snakemake report and the drawing loop
read that table. Every figure is written as PDF and PNG through :func:`heterofl.report.output.save_figure`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path

import matplotlib
import pandas as pd

from heterofl.errors import OUTPUT_ERRNOS
from heterofl.report.figures.registry import FIGURES, FigureInputs, FigureSpec, figure_spec_of

matplotlib.use("Agg")  # before any figure module imports pyplot: no display is needed or wanted

log = logging.getLogger(__name__)


def drawing_function(spec: FigureSpec) -> Callable[..., list[Path]]:
    """The ``module:function`` a figure declares, imported when first drawn."""
    if spec.draw is None:
        raise ValueError(f"figure {spec.stem!r} is drawn by its own rule, not by draw_figures")
    module, name = spec.draw.split(":")
    return getattr(importlib.import_module(module), name)


def draw_figures(inputs: FigureInputs, folder: Path) -> list[Path]:
    """Every figure of :data:`FIGURES` for every dataset (and split) of ``inputs.runs``; returns the files
    written. One figure that fails is logged and costs no other; a full or read-only disk fails them all."""
    runs = inputs.runs
    pairs = runs[["dataset", "data_split_mode"]]
    clock = [t.raw for stem, t in inputs.tables.items() if stem.startswith("clock_")]  # runs on the clock only
    pairs = pd.concat([pairs, *(raw[["dataset", "data_split_mode"]] for raw in clock)]).drop_duplicates()
    pairs = pairs.sort_values(["dataset", "data_split_mode"])
    written: list[Path] = []
    for dataset in sorted(pairs["dataset"].unique()):
        splits = pairs.loc[pairs["dataset"] == dataset, "data_split_mode"].tolist()
        for spec in FIGURES:
            if spec.per == "partition":
                continue
            for split in [None] if spec.per == "dataset" else splits:
                try:
                    written += drawing_function(spec)(inputs, dataset, split, folder)
                except Exception as error:
                    if isinstance(error, OSError) and error.errno in OUTPUT_ERRNOS:
                        raise  # one line from the CLI
                    log.exception("figure %s failed", spec.file_stem(dataset, split))
    return written


__all__ = ["FIGURES", "FigureInputs", "FigureSpec", "draw_figures", "drawing_function", "figure_spec_of"]

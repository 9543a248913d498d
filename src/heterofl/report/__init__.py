"""The report: paper-style tables and figures from finished run folders.

``build_report(runs_root, out_dir, metric)`` writes (``{D}`` dataset, ``{S}`` data split mode as in the
control string, e.g. ``iid``, ``non-iid-2``, ``none``; a file exists only when its runs do):

Always (fixed names, safe to declare as Snakemake outputs):

* ``{out}/summary/runs.csv``, ``{out}/summary/history.csv``: the long tables of :func:`collect_runs`;
* ``{out}/summary/cost.csv``: bytes and MACs per run and round (:func:`heterofl.report.collect.collect_summary`;
  only runs whose ``history.csv`` records them), with per-run sums as ``total_*`` columns of ``runs.csv``;
* ``{out}/summary/clock.csv``: the simulated clock of runs with a fleet, per run, round and device class
  (:func:`heterofl.report.collect.collect_clock`; header only without such runs);
* ``{out}/tables/index.md``: every table and figure written, with captions;
* ``{out}/summary/missing_runs.txt``: expected run folders without ``config.yaml``/``eval.csv`` (empty if none).

A run flagged as diverged (its folder holds ``DIVERGED``, :mod:`heterofl.divergence`) stays in ``runs.csv``
(``diverged`` true, ``diverged_reason``) but enters no table mean and no figure: every table of its dataset (and
split) ends with a line ``excluded: {dataset}/{model}/{run}/seed{N} diverged (reason)``, and ``index.md`` lists it.

Tables (each as ``.csv``, ``.md``, ``.tex``, ``.html`` formatted, plus ``_raw.csv`` numbers):

* ``tables/combination_{D}``: the paper's Table 1 (iid and non-IID splits as columns); here and in the
  interpolation and ablation tables, ``Paper``/``Δ`` columns give the published value and ours - paper for
  rows whose control string the paper reports (:mod:`heterofl.report.paper_numbers`; no columns otherwise);
* ``tables/interpolation_{D}_{S}``: fix-mode ``X{i}-Y{10-i}`` runs with endpoints, one section per pair;
* ``tables/ablation_{D}_{S}``: norm/scaler/mask variants, only if such runs exist;
* ``tables/submodels_{D}_{S}``: the global model evaluated at every rate a..e;
* ``tables/methods_{D}_{S}``: methods (HeteroFL, FedRolex, ...) compared per configuration, with the paired
  difference to HeteroFL; only where more than one method ran (:mod:`heterofl.report.methods`);
* ``tables/cost_{D}_{S}``: communication and client compute to first reach 90 % / 95 % of the final accuracy,
  and per-run totals (:mod:`heterofl.report.cost`); only from the ``cost.csv`` beside ``runs.csv``.

Figures (each ``.pdf`` and ``.png``, one module each under :mod:`heterofl.report.figures`, declared in its
table :data:`heterofl.report.figures.registry.FIGURES`; a figure whose data cannot fill a panel with two points
is skipped with a log line):

* ``figures/interpolation_{D}``, ``figures/pareto_{D}``: one per dataset, a column or row per split;
* ``figures/rates_heatmap_{D}_{S}``, ``figures/learning_curves_{D}_{S}``;
* ``figures/cost_curves_{D}_{S}``: only with ``summary/cost.csv`` (communication and client compute per round);
* ``figures/methods_{D}_{S}``: the method comparison, one panel per configuration.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from heterofl.csv_checks import read_summary_history, read_summary_runs
from heterofl.errors import HeteroFLError
from heterofl.identity import tags_of
from heterofl.io import write_csv, write_text
from heterofl.report.clock import clock_curves, clock_tables, clock_tables_beside
from heterofl.report.collect import collect_clock, collect_runs, collect_summary, missing_runs
from heterofl.report.cost import cost_tables_beside
from heterofl.report.figures.registry import FigureInputs, figure_spec_of
from heterofl.report.methods import method_tables, write_method_table
from heterofl.report.seed_stats import seed_stats
from heterofl.report.tables import (
    Table,
    all_tables,
    exclusion_note,
    run_folders,
    split_diverged,
    with_exclusions,
)

log = logging.getLogger(__name__)
METRICS = ("final", "best", "mean_last_k")


def figure_caption(stem: str) -> str:
    """What to read from a figure, by its file stem (one line of ``index.md``), from the figure table."""
    spec = figure_spec_of(stem)
    return spec.caption if spec is not None else "figure"


def _index(tables: list[Table], figures: list[Path], out: Path, excluded: pd.DataFrame | None = None) -> str:
    lines = ["# HeteroFL report", "", "## Tables", ""]
    if not tables:
        lines.append("No finished runs.")
    for table in tables:
        links = ", ".join(f"[{ext}]({table.stem}.{ext})" for ext in ("md", "csv", "tex"))
        lines.append(f"- `{table.stem}`: {table.caption} ({links}, [raw]({table.stem}_raw.csv))")
    lines += ["", "## Figures", ""]
    if figures:
        lines += [
            "Drawn by `snakemake figures` (`heterofl figures`); `results/committed` keeps only metric files, so"
            " in that tree run `make figures` first and read them under `results/figures/`.",
            "",
        ]
    by_stem: dict[tuple[Path, str], list[Path]] = {}
    for path in figures:
        by_stem.setdefault((path.parent, path.stem), []).append(path)
    for (parent, stem), paths in by_stem.items():
        links = ", ".join(
            f"[{p.suffix[1:]}]({Path(os.path.relpath(p, out)).as_posix()})" for p in sorted(paths, key=str)
        )
        caption = figure_caption(f"partition_{stem}" if parent.name == "partitions" else stem)
        lines.append(f"- `{stem}`: {caption} ({links})")
    if not by_stem:
        lines.append("None.")
    if excluded is not None and not excluded.empty:
        lines += ["", "## Excluded runs", "", "Diverged (a `DIVERGED` file in the run folder), in no mean or figure:"]
        lines.append("")
        lines += [f"- {exclusion_note(row)}" for row in excluded.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise HeteroFLError("metric", f"{metric!r} is unknown", ", ".join(METRICS))


def write_summary(
    summary_dir: str | Path,
    runs_root: str | Path | None = None,
    folders: list[str | Path] | None = None,
    expected: list[str | Path] | None = None,
) -> list[Path]:
    """Collect finished runs into ``runs.csv``/``history.csv``/``cost.csv``/``clock.csv`` and list
    expected-but-missing runs."""
    out = Path(summary_dir)
    runs, history, cost = collect_summary(runs_root, folders)
    written = [out / "runs.csv", out / "history.csv", out / "missing_runs.txt", out / "cost.csv", out / "clock.csv"]
    write_csv(written[0], runs)
    write_csv(written[1], history)
    write_csv(written[3], cost)
    write_csv(written[4], collect_clock(runs_root, folders))
    missing = missing_runs(list(expected or []))
    write_text(written[2], "".join(f"{m}\n" for m in missing))
    if missing:
        log.warning("%d expected runs are missing, see %s", len(missing), written[2])
    return written


def figure_files(paths: Iterable[str | Path]) -> list[Path]:
    """The PDF and PNG figures among ``paths`` (files, or folders whose figures are taken), in the given order
    of folders, sorted by name within one; paths that do not exist give nothing."""
    found: list[Path] = []
    for path in map(Path, paths):
        candidates = sorted(path.iterdir()) if path.is_dir() else [path] if path.is_file() else []
        found += [p for p in candidates if p.suffix in (".pdf", ".png") and p not in found]
    return found


def write_tables(
    runs_csv: str | Path, tables_dir: str | Path, metric: str = "mean_last_k", figures: Iterable[str | Path] = ()
) -> list[Path]:
    """Paper-style tables (CSV, Markdown, LaTeX, raw CSV, HTML) and ``index.md`` from the cached summary.

    ``index.md`` lists every table and the figures found in ``figures`` (:func:`figure_files`; write them first).
    """
    from heterofl.report.output import write_table, write_table_html

    _check_metric(metric)
    out = Path(tables_dir)
    runs, excluded = split_diverged(read_summary_runs(runs_csv))
    out.mkdir(parents=True, exist_ok=True)  # only once the input is accepted
    if not excluded.empty:
        log.warning("%d diverged runs left out of the tables: %s", len(excluded), ", ".join(excluded["folder"]))
    written: list[Path] = []
    paper = heterofl_runs(runs)
    tables = with_exclusions(all_tables(seed_stats(paper, metric)) if not paper.empty else [], excluded)
    tables += with_exclusions(cost_tables_beside(runs_csv, runs), excluded)  # needs cost.csv beside runs.csv
    tables += with_exclusions(clock_tables_beside(runs_csv, runs), excluded)  # needs clock.csv beside runs.csv
    for table in tables:
        written += write_table(out, table.stem, table.table, table.raw, table.caption, table.group, table.notes)
    comparisons = with_exclusions(method_tables(runs, metric), excluded)
    for table in comparisons:
        written += write_method_table(out, table)
    for table in [*tables, *comparisons]:
        written.append(write_table_html(out, table.stem, table.table, table.caption, table.group, table.notes))
    index_path = out / "index.md"
    write_text(index_path, _index([*tables, *comparisons], figure_files(figures), out, excluded))
    return [*written, index_path]


def write_figures(
    runs_csv: str | Path,
    history_csv: str | Path,
    figures_dir: str | Path,
    metric: str = "mean_last_k",
    cost_csv: str | Path | None = None,
) -> list[Path]:
    """Every figure of :mod:`heterofl.report.figures` (PDF and PNG) from the cached summary.

    ``cost_csv`` (default: a ``cost.csv`` beside ``history_csv``, if there is one) feeds the communication and
    compute figures; without it they are skipped with a log line.
    """
    from heterofl.csv_checks import read_summary_cost

    _check_metric(metric)
    out = Path(figures_dir)
    runs, history = read_summary_runs(runs_csv), read_summary_history(history_csv)
    if cost_csv is None and (Path(history_csv).parent / "cost.csv").is_file():
        cost_csv = Path(history_csv).parent / "cost.csv"
    cost = heterofl_runs(read_summary_cost(cost_csv)) if cost_csv is not None else None
    clock_csv = Path(history_csv).parent / "clock.csv"
    clock = pd.read_csv(clock_csv) if clock_csv.is_file() else None
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are accepted
    try:
        return _draw(runs, history, cost, clock, metric, out)
    except OSError:  # a full or read-only disk: leave no empty folder behind either
        if created and not any(out.iterdir()):
            out.rmdir()
        raise


def _draw(runs, history, cost, clock, metric: str, out: Path) -> list[Path]:
    from heterofl.report.figures import draw_figures  # matplotlib only when drawing

    runs, excluded = split_diverged(runs)
    if not excluded.empty and not history.empty:  # a diverged run's curve is not drawn either
        history = history[~run_folders(history).isin(set(excluded["folder"]))].reset_index(drop=True)
    if runs.empty:
        return []
    paper, paper_history = heterofl_runs(runs), heterofl_runs(history)
    tables = [*all_tables(seed_stats(paper, metric)), *method_tables(runs, metric)]
    curves = None
    if clock is not None and not clock.empty:
        tables += clock_tables(runs, history, clock)
        curves = clock_curves(clock, history)
    inputs = FigureInputs(paper, paper_history, metric, cost, {t.stem: t for t in tables}, curves)
    return draw_figures(inputs, out)


def heterofl_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The HeteroFL rows: the paper's tables and figures are HeteroFL's (other methods share its control
    strings and would otherwise be pooled as extra seeds); summaries from before ``method`` existed are all
    HeteroFL. Variants named by a run-name tag (``+bf16``, ``+fleet-...``, ``+server-sgd``) share the control
    string too and stay out for the same reason; ``+blocks...`` stays in (the tables key on ``resnet_blocks``)."""
    if "method" not in frame.columns:
        return frame
    keep = frame["method"].fillna("heterofl") == "heterofl"
    if "run" in frame.columns:
        keep &= frame["run"].map(_paper_variant)
    return frame[keep].reset_index(drop=True)


def _paper_variant(run: object) -> bool:
    tags = tags_of(run) if isinstance(run, str) else []
    return all(re.fullmatch(r"blocks\d+", tag) for tag in tags)


def build_report(
    runs_root: str | Path, out_dir: str | Path, metric: str = "mean_last_k", expected: list[str | Path] | None = None
) -> list[Path]:
    """Summary, tables and figures in one call (``heterofl report``); returns every path written.

    ``metric`` picks which per-run summary feeds tables and figures: ``final`` (last evaluation), ``best``
    (the reference's test-set-selected number) or ``mean_last_k`` (default).
    """
    _check_metric(metric)
    out = Path(out_dir)
    written = write_summary(out / "summary", runs_root, expected=expected)
    figures = write_figures(out / "summary" / "runs.csv", out / "summary" / "history.csv", out / "figures", metric)
    written += write_tables(out / "summary" / "runs.csv", out / "tables", metric, figures)  # index lists figures
    return [*written, *figures]


__all__ = ["build_report", "collect_runs", "missing_runs", "write_figures", "write_summary", "write_tables"]

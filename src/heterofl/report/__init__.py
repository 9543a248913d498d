"""The report: paper-style tables and figures from finished run folders.

``build_report(runs_root, out_dir, metric)`` writes (``{D}`` dataset, ``{S}`` data split mode as in the
control string, e.g. ``iid``, ``non-iid-2``, ``none``; a file exists only when its runs do):

Always (fixed names, safe to declare as Snakemake outputs):

* ``{out}/summary/runs.csv``, ``{out}/summary/history.csv``: the long tables of :func:`collect_runs`;
* ``{out}/tables/index.md``: every table and figure written, with captions;
* ``{out}/summary/missing_runs.txt``: expected run folders without ``config.yaml``/``eval.csv`` (empty if none).

A run flagged as diverged (its folder holds ``DIVERGED``, :mod:`heterofl.divergence`) stays in ``runs.csv``
(``diverged`` true, ``diverged_reason``) but enters no table mean and no figure: every table of its dataset (and
split) ends with a line ``excluded: {dataset}/{model}/{run}/seed{N} diverged (reason)``, and ``index.md`` lists it.

Tables (each as ``.csv``, ``.md``, ``.tex`` formatted, plus ``_raw.csv`` numbers):

* ``tables/combination_{D}``: the paper's Table 1 (iid and non-IID splits as columns);
* ``tables/interpolation_{D}_{S}``: fix-mode ``X{i}-Y{10-i}`` runs with endpoints, one section per pair;
* ``tables/ablation_{D}_{S}``: norm/scaler/mask variants, only if such runs exist;
* ``tables/submodels_{D}_{S}``: the global model evaluated at every rate a..e;
* ``tables/methods_{D}_{S}``: methods (HeteroFL, FedRolex, ...) compared per configuration, with the paired
  difference to HeteroFL; only where more than one method ran (:mod:`heterofl.report.methods`).

Figures (each ``.pdf`` and ``.png``; ``{K}`` is ``global``, plus ``local`` for non-IID splits):

* ``figures/interpolation_{D}_{S}_{K}``, ``figures/learning_curve_{D}_{S}_{K}``, ``figures/submodels_{D}_{S}``;
* ``figures/methods_{D}_{S}``: the method comparison, one panel per configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from heterofl.csv_checks import read_summary_history, read_summary_runs
from heterofl.errors import OUTPUT_ERRNOS, HeteroFLError
from heterofl.io import write_csv, write_text
from heterofl.report.aggregate import seed_stats
from heterofl.report.collect import collect_runs, missing_runs
from heterofl.report.methods import method_tables, write_method_table
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


def _index(tables: list[Table], figures: list[Path], out: Path, excluded: pd.DataFrame | None = None) -> str:
    lines = ["# HeteroFL report", "", "## Tables", ""]
    if not tables:
        lines.append("No finished runs.")
    for table in tables:
        links = ", ".join(f"[{ext}]({table.stem}.{ext})" for ext in ("md", "csv", "tex"))
        lines.append(f"- `{table.stem}`: {table.caption} ({links}, [raw]({table.stem}_raw.csv))")
    lines += ["", "## Figures", ""]
    stems = sorted({p.stem for p in figures})
    lines += [f"- `{stem}`: [pdf](../figures/{stem}.pdf), [png](../figures/{stem}.png)" for stem in stems]
    if not stems:
        lines.append("None.")
    if excluded is not None and not excluded.empty:
        lines += ["", "## Excluded runs", "", "Diverged (a `DIVERGED` file in the run folder), in no mean or figure:"]
        lines.append("")
        lines += [f"- {exclusion_note(row)}" for row in excluded.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _figures(runs: pd.DataFrame, history: pd.DataFrame, tables: list[Table], value: str, folder: Path) -> list[Path]:
    from heterofl.report import figures as fig

    written: list[Path] = []
    pairs = runs[["dataset", "data_split_mode"]].drop_duplicates().sort_values(["dataset", "data_split_mode"])
    by_stem = {t.stem: t for t in tables}
    for dataset, split in pairs.itertuples(index=False):
        steps = [
            lambda d=dataset, s=split: fig.learning_curve_figures(runs, history, d, s, folder),
            lambda d=dataset, s=split: fig.submodel_figure(runs, value, d, s, folder),
        ]
        methods = by_stem.get(f"methods_{dataset}_{split}")
        if methods is not None:
            steps.append(lambda t=methods, d=dataset, s=split: fig.method_figure(t, d, s, folder))
        interpolation = by_stem.get(f"interpolation_{dataset}_{split}")
        if interpolation is not None:
            steps.insert(0, lambda t=interpolation, d=dataset, s=split: fig.interpolation_figures(t, d, s, folder))
        for step in steps:
            try:
                written += step()
            except Exception as error:  # one bad figure must not cost the tables or the other figures
                if isinstance(error, OSError) and error.errno in OUTPUT_ERRNOS:
                    raise  # but a full or read-only disk fails them all: one line from the CLI
                log.exception("figure for %s %s failed", dataset, split)
    return written


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise HeteroFLError("metric", f"{metric!r} is unknown", ", ".join(METRICS))


def write_summary(
    summary_dir: str | Path,
    runs_root: str | Path | None = None,
    folders: list[str | Path] | None = None,
    expected: list[str | Path] | None = None,
) -> list[Path]:
    """Collect finished runs into ``runs.csv``/``history.csv`` and list expected-but-missing runs."""
    out = Path(summary_dir)
    runs, history = collect_runs(runs_root, folders)
    written = [out / "runs.csv", out / "history.csv", out / "missing_runs.txt"]
    write_csv(written[0], runs)
    write_csv(written[1], history)
    missing = missing_runs(list(expected or []))
    write_text(written[2], "".join(f"{m}\n" for m in missing))
    if missing:
        log.warning("%d expected runs are missing, see %s", len(missing), written[2])
    return written


def write_tables(runs_csv: str | Path, tables_dir: str | Path, metric: str = "mean_last_k") -> list[Path]:
    """Paper-style tables (CSV, Markdown, LaTeX, raw CSV) and ``index.md`` from the cached summary."""
    from heterofl.report.output import write_table

    _check_metric(metric)
    out = Path(tables_dir)
    runs, excluded = split_diverged(read_summary_runs(runs_csv))
    out.mkdir(parents=True, exist_ok=True)  # only once the input is accepted
    if not excluded.empty:
        log.warning("%d diverged runs left out of the tables: %s", len(excluded), ", ".join(excluded["folder"]))
    written: list[Path] = []
    paper = heterofl_runs(runs)
    tables = with_exclusions(all_tables(seed_stats(paper, metric)) if not paper.empty else [], excluded)
    for table in tables:
        written += write_table(out, table.stem, table.table, table.raw, table.caption, table.group, table.notes)
    comparisons = with_exclusions(method_tables(runs, metric), excluded)
    for table in comparisons:
        written += write_method_table(out, table)
    index_path = out / "index.md"
    write_text(index_path, _index([*tables, *comparisons], [], out, excluded))
    return [*written, index_path]


def write_figures(
    runs_csv: str | Path, history_csv: str | Path, figures_dir: str | Path, metric: str = "mean_last_k"
) -> list[Path]:
    """Interpolation, learning-curve and submodel figures (PDF and PNG) from the cached summary."""
    _check_metric(metric)
    out = Path(figures_dir)
    runs, history = read_summary_runs(runs_csv), read_summary_history(history_csv)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are accepted
    runs, excluded = split_diverged(runs)
    if not excluded.empty and not history.empty:  # a diverged run's curve is not drawn either
        history = history[~run_folders(history).isin(set(excluded["folder"]))].reset_index(drop=True)
    if runs.empty:
        return []
    paper, paper_history = heterofl_runs(runs), heterofl_runs(history)
    tables = [*all_tables(seed_stats(paper, metric)), *method_tables(runs, metric)]
    return _figures(paper, paper_history, tables, metric, out)


def heterofl_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The HeteroFL rows: the paper's tables and figures are HeteroFL's (other methods share its control
    strings and would otherwise be pooled as extra seeds); summaries from before ``method`` existed are all
    HeteroFL."""
    if "method" not in frame.columns:
        return frame
    return frame[frame["method"].fillna("heterofl") == "heterofl"].reset_index(drop=True)


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
    written += write_tables(out / "summary" / "runs.csv", out / "tables", metric)
    written += write_figures(out / "summary" / "runs.csv", out / "summary" / "history.csv", out / "figures", metric)
    return written


__all__ = ["build_report", "collect_runs", "missing_runs", "write_figures", "write_summary", "write_tables"]

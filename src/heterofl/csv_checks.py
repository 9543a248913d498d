"""Reading the cached CSV files back, refusing by name any whose content cannot be what was written.

A run's ``history.csv`` and ``eval.csv`` and the summary's ``runs.csv``, ``history.csv`` and ``cost.csv`` feed
every table and figure. An empty or truncated file, the wrong file (a history given as runs), a missing column or a NaN
where a number is required would otherwise turn silently into a wrong table; here each is one
:class:`HeteroFLError` naming the file, and the line and column of the first bad cell.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from heterofl.config import CONTROL_FIELDS
from heterofl.data.registry import dataset_names
from heterofl.errors import HeteroFLError
from heterofl.rates import RATE_OF_LETTER
from heterofl.results import ACCOUNTING_COLUMNS


def read_csv_file(path: str | Path, field: str, allowed: str) -> pd.DataFrame:
    """``pd.read_csv(path)``, with an unreadable, empty or malformed file refused in one line."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise HeteroFLError(field, f"{path} does not exist", allowed) from None
    except OSError as error:
        raise HeteroFLError(field, f"{path} cannot be read ({error.strerror or error})", allowed) from None
    except UnicodeDecodeError:
        raise HeteroFLError(field, f"{path} is not a text CSV file", allowed) from None
    except pd.errors.EmptyDataError:
        raise HeteroFLError(field, f"{path} is empty", allowed) from None
    except pd.errors.ParserError as error:
        why = " ".join(str(error).split())[:120]
        raise HeteroFLError(field, f"{path} is not a valid CSV ({why})", allowed) from None


def require_columns(frame: pd.DataFrame, path: str | Path, field: str, columns: list[str], allowed: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise HeteroFLError(
            field, f"{path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}", allowed
        )


def require_rows(frame: pd.DataFrame, path: str | Path, field: str, allowed: str) -> None:
    if frame.empty:
        raise HeteroFLError(field, f"{path} has a header but no rows", allowed)


def _cell(path: str | Path, row: int, column: str) -> str:
    return f"{path} line {row + 2}, column {column}"  # line 1 is the header


def _shown(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "is empty (NaN)"
    return f"holds {value!r}, not a finite number"


def require_finite(
    frame: pd.DataFrame,
    path: str | Path,
    field: str,
    columns: list[str],
    allowed: str,
    skip_rows: pd.Series | None = None,
) -> None:
    """Every cell of ``columns`` a finite number (rows where ``skip_rows`` is True excepted)."""
    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce").astype(float)
        bad = ~np.isfinite(numbers.to_numpy())
        if skip_rows is not None:
            bad &= ~skip_rows.to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise HeteroFLError(field, f"{_cell(path, row, column)} {_shown(frame[column].iloc[row])}", allowed)


def require_present(frame: pd.DataFrame, path: str | Path, field: str, columns: list[str], allowed: str) -> None:
    """No empty cell in ``columns`` (keys such as dataset, control, letter, metric)."""
    for column in columns:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise HeteroFLError(field, f"{_cell(path, row, column)} is empty", allowed)


def _first_bad(bad: np.ndarray) -> int | None:
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def require_domain(frame: pd.DataFrame, path: str | Path, field: str, values: list[str], allowed: str) -> None:
    """Keys and numbers a summary can hold: a dataset of the registry, a seed >= 0 (an integer), known rate
    letters (and each letter's rate), and accuracies (``*Accuracy`` metrics) in [0, 100]."""
    checks = []
    if "dataset" in frame.columns:
        names = dataset_names()
        checks.append(("dataset", ~frame["dataset"].isin(names).to_numpy(), ", ".join(names)))
    if "seed" in frame.columns:
        seeds = pd.to_numeric(frame["seed"], errors="coerce").astype(float).to_numpy()
        checks.append(("seed", ~((seeds >= 0) & (np.floor(seeds) == seeds)), "an integer >= 0"))
    for column in ("letter", "global_letter"):
        if column in frame.columns:
            checks.append((column, ~frame[column].isin(list(RATE_OF_LETTER)).to_numpy(), ", ".join(RATE_OF_LETTER)))
    if "rate" in frame.columns and "letter" in frame.columns:
        rates = pd.to_numeric(frame["rate"], errors="coerce").astype(float).to_numpy()
        wanted = frame["letter"].map(RATE_OF_LETTER).astype(float).to_numpy()
        checks.append(("rate", ~np.isclose(rates, wanted), "the rate of the row's letter (a 1, b 0.5, ... e 0.0625)"))
    if "metric" in frame.columns:
        accuracy = frame["metric"].astype(str).str.endswith("Accuracy").to_numpy()
        for column in values:
            numbers = pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
            checks.append((column, accuracy & ~((numbers >= 0) & (numbers <= 100)), "an accuracy in 0..100"))
    for column, bad, what in checks:
        row = _first_bad(bad)
        if row is not None:
            raise HeteroFLError(
                field, f"{_cell(path, row, column)} holds {frame[column].iloc[row]!r}", f"{what}; {allowed}"
            )


# --------------------------------------------------------------------------------------- the files themselves

METRIC_COLUMN = re.compile(r"^([a-e])_(.+)$")
VALUES = ["final", "best", "mean_last_k"]
_RUN_AGAIN = "the {} a finished run wrote; {} the run again"


def read_run_history(path: str | Path) -> pd.DataFrame:
    """A run's ``history.csv``: one row per round, every evaluated round's metrics finite, the last evaluated.

    Rounds between evaluations (``eval_every`` > 1) have no metric values at all; a row with some but not
    all of them, or a NaN in the last round (which always evaluates), is corrupt. The accounting columns
    (``results.ACCOUNTING_COLUMNS``) are optional: absent in older runs, empty in the rounds of a resumed run
    that were trained before they existed, but never partly empty or not a finite number in a row.
    """
    allowed = _RUN_AGAIN.format("history.csv", "train")
    frame = read_csv_file(path, "history", allowed)
    require_columns(frame, path, "history", ["round"], allowed)
    require_rows(frame, path, "history", allowed)
    metrics = [c for c in frame.columns if METRIC_COLUMN.match(str(c))]
    if not metrics:
        raise HeteroFLError("history", f"{path} has no metric column (such as a_Global-Accuracy)", allowed)
    require_finite(frame, path, "history", ["round"], allowed)
    require_contiguous_rounds(frame["round"], path, allowed)
    unevaluated = frame[metrics].isna().all(axis=1)
    unevaluated.iloc[-1] = False  # the last round always evaluates
    require_finite(frame, path, "history", metrics, allowed, skip_rows=unevaluated)
    accounting = [c for c in ACCOUNTING_COLUMNS if c in frame.columns]
    if accounting:
        unrecorded = frame[accounting].isna().all(axis=1)
        require_finite(frame, path, "history", accounting, allowed, skip_rows=unrecorded)
    return frame


def require_contiguous_rounds(rounds: pd.Series, path: str | Path, allowed: str) -> None:
    """Rounds 1, 2, ..., n, once each and in order: a deleted or repeated row would shift best and last-k."""
    expected = np.arange(1, len(rounds) + 1)
    differs = np.flatnonzero(rounds.to_numpy(dtype=float) != expected)
    if len(differs):
        line = int(differs[0]) + 2  # the header is line 1
        raise HeteroFLError(
            "history",
            f"{path} line {line} is round {rounds.iloc[differs[0]]:g} where round {expected[differs[0]]} belongs"
            " (rounds must run 1, 2, 3, ... once each)",
            allowed,
        )


def read_run_eval(path: str | Path) -> pd.DataFrame:
    """A run's ``eval.csv``: per evaluated letter and metric, finite final, best and mean_last_k."""
    allowed = _RUN_AGAIN.format("eval.csv", "evaluate")
    frame = read_csv_file(path, "eval", allowed)
    require_columns(frame, path, "eval", ["letter", "rate", "metric", *VALUES], allowed)
    require_rows(frame, path, "eval", allowed)
    require_present(frame, path, "eval", ["letter", "metric"], allowed)
    require_finite(frame, path, "eval", ["rate", *VALUES], allowed)
    require_domain(frame, path, "eval", VALUES, allowed)
    repeated = frame.duplicated(["letter", "metric"]).to_numpy()
    row = _first_bad(repeated)
    if row is not None:
        raise HeteroFLError(
            "eval",
            f"{_cell(path, row, 'metric')} repeats {frame['letter'].iloc[row]} {frame['metric'].iloc[row]}",
            f"one row per letter and metric; {allowed}",
        )
    return frame


SUMMARY_KEYS = [
    "dataset",
    "model",
    "control",
    "seed",
    *CONTROL_FIELDS,
    "global_letter",
    "resnet_blocks",
    "letter",
    "metric",
]
SUMMARY_HISTORY_KEYS = ["dataset", "model", "control", "seed", "round", "letter", "metric"]
SUMMARY_COST_KEYS = ["dataset", "model", "control", "seed", "round"]


def read_summary_runs(path: str | Path, field: str = "summary") -> pd.DataFrame:
    """The summary's ``runs.csv`` (``heterofl collect``); no rows is fine (no finished run yet)."""
    allowed = "the runs.csv written by 'heterofl collect'"
    frame = read_csv_file(path, field, allowed)
    require_columns(frame, path, field, [*SUMMARY_KEYS, *VALUES], allowed)
    require_present(frame, path, field, SUMMARY_KEYS, allowed)
    require_finite(frame, path, field, VALUES, allowed)
    require_domain(frame, path, field, VALUES, allowed)
    return frame


def read_summary_history(path: str | Path, field: str = "summary") -> pd.DataFrame:
    """The summary's ``history.csv`` (``heterofl collect``), long format: one value per run, round, metric."""
    allowed = "the history.csv written by 'heterofl collect'"
    frame = read_csv_file(path, field, allowed)
    require_columns(frame, path, field, [*SUMMARY_HISTORY_KEYS, "value"], allowed)
    require_present(frame, path, field, SUMMARY_HISTORY_KEYS, allowed)
    require_finite(frame, path, field, ["round", "value"], allowed)
    require_domain(frame, path, field, ["value"], allowed)
    return frame


def read_summary_cost(path: str | Path, field: str = "summary") -> pd.DataFrame:
    """The summary's ``cost.csv`` (``heterofl collect``): bytes and MACs per run and round; no rows is fine."""
    allowed = "the cost.csv written by 'heterofl collect'"
    frame = read_csv_file(path, field, allowed)
    require_columns(frame, path, field, [*SUMMARY_COST_KEYS, *ACCOUNTING_COLUMNS], allowed)
    require_present(frame, path, field, SUMMARY_COST_KEYS, allowed)
    require_finite(frame, path, field, ["round", *ACCOUNTING_COLUMNS], allowed)
    sparse = frame.get("sparse_bytes_from_clients")  # FIARSE's runs only: empty elsewhere, never negative
    if sparse is not None and bool((pd.to_numeric(sparse, errors="coerce").fillna(0) < 0).any()):
        raise HeteroFLError(field, f"{path}: sparse_bytes_from_clients holds negative values", allowed)
    return frame

"""Gather finished run folders into two long tables, so every table and figure reads one shape of data.

A run folder is any folder under the runs root holding a run's ``config.yaml``: the pipeline's
``{runs_root}/{dataset}/{model}/{run name}/seed{N}/`` (``identity.run_key``: the control string plus ``+tags``
such as the method) and ``heterofl train --out RUNS/NAME`` alike; it counts as finished only when
both ``config.yaml`` and ``eval.csv`` exist (a crashed or still-running job has neither ``eval.csv``).
A finished run that diverged without NaN holds ``DIVERGED`` (``heterofl.divergence``): it is collected with
``diverged`` true and the file's line as ``diverged_reason``, and the tables leave it out of their means.

A third long table, ``cost``, holds every round's communication and compute (``heterofl.accounting``) of the
runs whose ``history.csv`` records it; ``runs`` carries each run's sums (empty when the run did not record
every round: runs trained before the accounting existed, or resumed across that change).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from heterofl import provenance
from heterofl.config import CONTROL_FIELDS, ExperimentConfig
from heterofl.csv_checks import read_run_eval, read_run_history
from heterofl.errors import HeteroFLError
from heterofl.identity import run_name
from heterofl.results import ACCOUNTING_COLUMNS, DIVERGED, RUN_FILES
from heterofl.settings_file import read_yaml_config

log = logging.getLogger(__name__)

KEY_COLUMNS = ["dataset", "model", "run", "control", "method", "seed"]
CONFIG_COLUMNS = [*KEY_COLUMNS, *CONTROL_FIELDS, "global_letter", "resnet_blocks"]
VALUE_COLUMNS = ["final", "best", "mean_last_k"]
PROVENANCE_COLUMNS = [*provenance.SUMMARY_FIELDS, "train_sessions"]
HEALTH_COLUMNS = ["diverged", "diverged_reason"]  # the run folder's DIVERGED flag (heterofl.divergence)
TOTAL_COLUMNS = ["total_bytes_to_clients", "total_bytes_from_clients", "total_client_train_macs", "total_server_macs"]
"""Per-run sums of the accounting; ``total_server_macs`` is static BN plus evaluation."""
RUN_COLUMNS = [
    *CONFIG_COLUMNS,
    "letter",
    "rate",
    "metric",
    *VALUE_COLUMNS,
    *PROVENANCE_COLUMNS,
    *HEALTH_COLUMNS,
    *TOTAL_COLUMNS,
]
HISTORY_COLUMNS = [*KEY_COLUMNS, "round", "letter", "metric", "value"]
COST_COLUMNS = [*KEY_COLUMNS, "round", *ACCOUNTING_COLUMNS]
SPARSE_UPLOAD = "sparse_bytes_from_clients"
"""FIARSE's upload if sent sparse (values and indices): a ``cost.csv`` column only when some run recorded it,
so summaries without such runs keep their columns."""
_METRIC_COLUMN = re.compile(r"^([a-e])_(.+)$")


def is_finished(folder: str | Path) -> bool:
    """A run is usable for reporting only once its config and final evaluation are on disk."""
    folder = Path(folder)
    return (folder / RUN_FILES["config"]).is_file() and (folder / RUN_FILES["eval"]).is_file()


def run_folders(runs_root: str | Path) -> list[Path]:
    """Every folder under ``runs_root`` that holds a run's ``config.yaml``, at any depth, sorted."""
    return sorted(path.parent for path in Path(runs_root).rglob(RUN_FILES["config"]))


def check_runs_root(runs_root: str | Path) -> None:
    """Refuse, in one line, a runs root with no finished run: the report would otherwise be empty."""
    root = Path(runs_root)
    layout = (
        "a folder of run folders, each with config.yaml and eval.csv "
        f"(heterofl train --out {root}/NAME, then heterofl evaluate --run {root}/NAME)"
    )
    if not root.is_dir():
        raise HeteroFLError("--runs", f"{root} is not a folder", layout)
    folders = run_folders(root)
    if not folders:
        raise HeteroFLError("--runs", f"{root} holds no run folder (no config.yaml below it)", layout)
    if not any(is_finished(folder) for folder in folders):
        shown = ", ".join(str(folder) for folder in folders[:3]) + (" ..." if len(folders) > 3 else "")
        problem = f"none of its {len(folders)} run folders is evaluated (no eval.csv: {shown})"
        raise HeteroFLError("--runs", problem, "run heterofl evaluate --run FOLDER on each first")


def missing_runs(expected: list[str | Path]) -> list[str]:
    """Expected run folders that did not finish, so a partial sweep (``--keep-going``) is visible."""
    return [str(folder) for folder in expected if not is_finished(folder)]


def divergence_fields(folder: str | Path) -> dict:
    """``diverged`` and its one-line reason, from the run's ``DIVERGED`` flag (absent: a healthy run)."""
    flag = Path(folder) / DIVERGED
    if not flag.is_file():
        return {"diverged": False, "diverged_reason": ""}
    reason = " ".join(flag.read_text(encoding="utf-8", errors="replace").split())
    return {"diverged": True, "diverged_reason": reason or "flagged without a reason"}


def _config_row(config: ExperimentConfig) -> dict:
    control = config.control
    row = {
        "dataset": config.dataset,
        "model": config.model,
        "run": run_name(config),
        "control": control.format(),
        "method": config.method,
        "seed": config.seed,
    }
    row.update({name: getattr(control, name) for name in CONTROL_FIELDS})
    row["global_letter"] = config.mode.letters[0]
    row["resnet_blocks"] = "-".join(str(b) for b in config.resnet_blocks)
    return row


def _history_long(history: pd.DataFrame, key: dict) -> pd.DataFrame:
    columns = [c for c in history.columns if _METRIC_COLUMN.match(c)]
    if not columns or "round" not in history.columns:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    long = history.melt(id_vars=["round"], value_vars=columns, var_name="column", value_name="value")
    long = long.dropna(subset=["value"])
    parts = long["column"].str.extract(_METRIC_COLUMN)
    long = long.assign(letter=parts[0], metric=parts[1], **key)
    return long[HISTORY_COLUMNS]


def _cost_long(history: pd.DataFrame, key: dict) -> pd.DataFrame:
    """The rounds of one run's history that recorded every accounting column (none for older runs)."""
    if "round" not in history.columns or not set(ACCOUNTING_COLUMNS) <= set(history.columns):
        return pd.DataFrame(columns=COST_COLUMNS)
    rows = history.dropna(subset=list(ACCOUNTING_COLUMNS))
    sparse = [SPARSE_UPLOAD] if SPARSE_UPLOAD in rows.columns and rows[SPARSE_UPLOAD].notna().all() else []
    cost = rows[["round", *ACCOUNTING_COLUMNS, *sparse]].astype("int64").assign(**key)
    return cost[[*COST_COLUMNS, *sparse]]


CLOCK_ROUND_COLUMNS = [
    "sim_round_seconds",
    "sim_seconds",
    "clients_sampled",
    "clients_offline",
    "clients_dropped",
    "wasted_client_train_macs",
    "client_train_macs",
]
CLOCK_COLUMNS = [
    *KEY_COLUMNS,
    "data_split_mode",
    "fleet",
    "round",
    *CLOCK_ROUND_COLUMNS,
    "device_class",
    "sampled",
    "kept",
    "dropped",
    "sampled_samples",
    "kept_samples",
]
"""``summary/clock.csv``: one row per run on the simulated clock, round and device class (``clock.py``)."""


def _clock_long(history: pd.DataFrame, key: dict, fleet: str) -> pd.DataFrame:
    """One run's clock columns, one row per round and device class (its ``dropped_<class>`` columns name them)."""
    classes = [c.removeprefix("dropped_") for c in history.columns if c.startswith("dropped_")]
    if not classes or not set(CLOCK_ROUND_COLUMNS) <= set(history.columns):
        return pd.DataFrame(columns=CLOCK_COLUMNS)
    frames = [
        history[["round", *CLOCK_ROUND_COLUMNS]].assign(
            device_class=name,
            sampled=history[f"sampled_{name}"],
            kept=history[f"kept_{name}"],
            dropped=history[f"dropped_{name}"],
            sampled_samples=history.get(f"sampled_samples_{name}"),  # absent (NaN) in runs before they existed
            kept_samples=history.get(f"kept_samples_{name}"),
        )
        for name in classes
    ]
    return pd.concat(frames, ignore_index=True).assign(**key, fleet=fleet)[CLOCK_COLUMNS]


def collect_clock(runs_root: str | Path | None = None, folders: list[str | Path] | None = None) -> pd.DataFrame:
    """The simulated clock of every finished run that ran on one (``config.fleet``); empty otherwise."""
    if folders is not None:
        config_paths = [Path(f) / RUN_FILES["config"] for f in folders]
    else:
        config_paths = [folder / RUN_FILES["config"] for folder in run_folders(runs_root)]
    frames = []
    for config_path in config_paths:
        folder = config_path.parent
        if not is_finished(folder) or not (folder / RUN_FILES["history"]).is_file():
            continue
        try:
            config = ExperimentConfig.from_dict(read_yaml_config(config_path))
        except Exception:  # collect_summary has logged it
            continue
        if config.fleet is None:
            continue
        row = _config_row(config)
        key = {k: row[k] for k in [*KEY_COLUMNS, "data_split_mode"]}
        frames.append(_clock_long(read_run_history(folder / RUN_FILES["history"]), key, config.fleet))
    frames = [f for f in frames if not f.empty]
    clock = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CLOCK_COLUMNS)
    return clock.sort_values([*KEY_COLUMNS, "round", "device_class"], kind="stable").reset_index(drop=True)


def cost_totals(cost: pd.DataFrame, history: pd.DataFrame | None) -> dict:
    """One run's sums of its accounting, or empty (NA) values unless every round of ``history`` recorded it."""
    rounds = set(history["round"].astype("int64")) if history is not None and "round" in history.columns else set()
    if cost.empty or set(cost["round"]) != rounds:
        return dict.fromkeys(TOTAL_COLUMNS, pd.NA)
    return {
        "total_bytes_to_clients": int(cost["bytes_to_clients"].sum()),
        "total_bytes_from_clients": int(cost["bytes_from_clients"].sum()),
        "total_client_train_macs": int(cost["client_train_macs"].sum()),
        "total_server_macs": int(cost["server_static_bn_macs"].sum() + cost["server_eval_macs"].sum()),
    }


def _refuse_twice(seen: dict[object, Path], key: object, folder: Path, what: str) -> None:
    """A run counted twice would weigh double in every mean of the tables."""
    if key in seen:
        raise HeteroFLError("run", f"{folder} {what} {seen[key]}", "each run folder once, and each run in one folder")
    seen[key] = folder


def collect_runs(
    runs_root: str | Path | None = None, folders: list[str | Path] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every finished run's evaluation (``runs``) and per-round curves (``history``), both long format.

    Runs are the finished folders under ``runs_root``, or the given ``folders`` (unfinished ones skipped).

    ``runs``: one row per run, evaluated letter and metric, with the control fields spelled out so that
    tables can filter on them. ``history``: one row per run, round, letter and metric.
    """
    runs, history, _ = collect_summary(runs_root, folders)
    return runs, history


def collect_summary(
    runs_root: str | Path | None = None, folders: list[str | Path] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`collect_runs`' two tables plus ``cost``: one row per run and round that recorded the
    communication and compute of the round (``COST_COLUMNS``); ``runs`` holds each run's sums."""
    if folders is not None:
        config_paths = [Path(f) / RUN_FILES["config"] for f in folders]
    else:
        config_paths = [folder / RUN_FILES["config"] for folder in run_folders(runs_root)]
    run_frames, history_frames, cost_frames = [], [], []
    seen: dict[object, Path] = {}
    for config_path in config_paths:
        folder = config_path.parent
        _refuse_twice(seen, folder.resolve(), folder, "is the same folder as")
        if not is_finished(folder):
            continue
        try:
            config = ExperimentConfig.from_dict(read_yaml_config(config_path))
        except Exception as error:  # a corrupt run must not stop the report for the others
            log.warning("skipping %s: %s", folder, error)
            continue
        # but a NaN, a missing column or an empty eval.csv/history.csv is refused: it would become a table
        trained_hash = provenance.trained_config_hash(folder)
        if trained_hash is not None and trained_hash != config.config_hash():
            raise HeteroFLError(
                "config",
                f"{config_path} was edited after training (config hash {config.config_hash()}, trained as"
                f" {trained_hash} per {provenance.FILE})",
                "the config.yaml training wrote; retrain the run to change its settings",
            )
        evaluation = read_run_eval(folder / RUN_FILES["eval"])
        row = {**_config_row(config), **provenance.summary_fields(folder), **divergence_fields(folder)}
        key = {k: row[k] for k in KEY_COLUMNS}
        _refuse_twice(seen, tuple(key.values()), folder, f"holds the same run ({'/'.join(map(str, key.values()))}) as")
        history_path = folder / RUN_FILES["history"]
        history = read_run_history(history_path) if history_path.is_file() else None
        cost = _cost_long(history, key) if history is not None else pd.DataFrame(columns=COST_COLUMNS)
        row.update(cost_totals(cost, history))
        if not evaluation.empty:
            run_frames.append(evaluation.assign(**row)[RUN_COLUMNS])
        if history is not None:
            history_frames.append(_history_long(history, key))
        if not cost.empty:
            cost_frames.append(cost)
    runs = pd.concat(run_frames, ignore_index=True) if run_frames else pd.DataFrame(columns=RUN_COLUMNS)
    history = (
        pd.concat([h for h in history_frames if not h.empty], ignore_index=True)
        if any(not h.empty for h in history_frames)
        else pd.DataFrame(columns=HISTORY_COLUMNS)
    )
    cost = pd.concat(cost_frames, ignore_index=True) if cost_frames else pd.DataFrame(columns=COST_COLUMNS)
    runs = runs.astype({c: "Int64" for c in TOTAL_COLUMNS})  # integers, empty where a run did not record them
    runs = runs.sort_values([*KEY_COLUMNS, "letter", "metric"], kind="stable").reset_index(drop=True)
    history = history.sort_values([*KEY_COLUMNS, "round", "letter", "metric"], kind="stable").reset_index(drop=True)
    cost = cost.sort_values([*KEY_COLUMNS, "round"], kind="stable").reset_index(drop=True)
    return runs, history, cost

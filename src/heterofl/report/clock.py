"""Runs on the simulated clock (``clock.py``): which setup reaches an accuracy first, what a time budget buys,
and whose updates reach the model, per device fleet.

From ``summary/clock.csv`` (one row per run, round and device class) and the summary's ``history.csv``: per
(fleet, setup), over seeds, the final global accuracy, the simulated time of the whole run, the simulated time
at which the global model first reaches each of ``targets`` (at an evaluated round; the runs that never do are counted),
the accuracy of the last evaluation within ``budget`` seconds, the share of sampled updates lost (late or beyond
the first K) and of client compute wasted on them, and per device class the share of its sampled updates that
reached the model (its clients' training samples; the share of its updates in runs from before samples were
recorded). Every setup is paired by seed against HeteroFL with widths by capability on the same fleet
(95 % t-intervals, :func:`heterofl.report.methods.paired_interval`).
"""

from __future__ import annotations

import math

import pandas as pd

from heterofl.identity import tags_of
from heterofl.methods.registry import METHODS
from heterofl.rates import ModelMode
from heterofl.report.methods import paired_interval
from heterofl.report.seed_stats import global_metric
from heterofl.report.tables import Table

TARGETS = (90.0, 95.0)
"""Global accuracies (%) whose first arrival is timed: a low one a small model reaches, a high one it may not."""
BUDGET = 30 * 60.0
"""Seconds of simulated time within which the accuracy is read."""
RUN_KEYS = ["dataset", "model", "run", "seed"]
REFERENCE = "HeteroFL, capability widths"


def setup_label(run: str, method: str, model_mode: str) -> str:
    """What a run did on the clock, from its name: the method (HeteroFL at one rate is FedAvg of that width)
    and the policy (waiting for every client, a deadline, over-commitment, widths by capability)."""
    tags = tags_of(run)
    capability = "capability" in tags
    letters = ModelMode.parse(model_mode).letters
    if method == "heterofl" and len(letters) == 1 and not capability:
        who = "FedAvg, full model" if letters[0] == "a" else f"FedAvg, rate {letters[0]}"
    else:
        who = METHODS[method].label if method in METHODS else method
    deadline = next((t.removeprefix("deadline").removesuffix("s") for t in tags if t.startswith("deadline")), None)
    overcommit = next((t.removeprefix("oc") for t in tags if t.startswith("oc")), None)
    if capability:
        policy = "capability widths"
    elif deadline is not None:
        policy = f"deadline {deadline} s"
    else:
        policy = "wait for all"
    if overcommit is not None:
        policy += f", overcommit {overcommit}"
    return f"{who}, {policy}"


def per_run(clock: pd.DataFrame, history: pd.DataFrame, targets: tuple[float, ...], budget: float) -> pd.DataFrame:
    """One row per run on the clock: its fleet, setup, final accuracy, total time, time to each target,
    accuracy within ``budget``, lost updates and wasted compute, and per class the share of updates kept."""
    rows = []
    for key, part in clock.groupby(RUN_KEYS, sort=False):
        first = part.iloc[0]
        rounds = part.drop_duplicates("round").set_index("round").sort_index()
        metric = global_metric(first["dataset"])
        mode = first["control"].split("_")[5]
        curve = history[
            (history[RUN_KEYS].apply(tuple, axis=1) == key)
            & (history["metric"] == metric)
            & (history["letter"] == mode.split("-")[0][0])
        ]
        curve = curve.assign(time=curve["round"].map(rounds["sim_seconds"])).sort_values("round")
        within = curve[curve["time"] <= budget]
        # the share of each class's training data that reached the model: sample-weighted where the run recorded
        # samples, else the share of its updates (the same when its clients' shards are of one size)
        weighted = part["sampled_samples"].notna().all() if "sampled_samples" in part else False
        amounts = ["sampled_samples", "kept_samples"] if weighted else ["sampled", "kept"]
        by_class = part.groupby("device_class", sort=False)[amounts].sum().set_axis(["sampled", "kept"], axis=1)
        sampled, dropped = rounds["clients_sampled"].sum(), rounds["clients_dropped"].sum()
        spent = rounds["client_train_macs"].sum() + rounds["wasted_client_train_macs"].sum()
        rows.append(
            {
                **dict(zip(RUN_KEYS, key, strict=True)),
                "data_split_mode": first["data_split_mode"],
                "fleet": first["fleet"],
                "setup": setup_label(first["run"], first["method"], mode),
                "final": float(curve["value"].iloc[-1]) if len(curve) else math.nan,
                "minutes": float(rounds["sim_seconds"].iloc[-1]) / 60,
                **{f"to_{target:g}": _first_time(curve, target) for target in targets},
                "within_budget": float(within["value"].iloc[-1]) if len(within) else math.nan,
                "lost": 100.0 * dropped / sampled if sampled else math.nan,
                "wasted": 100.0 * rounds["wasted_client_train_macs"].sum() / spent if spent else math.nan,
                **{
                    f"kept_{name}": 100.0 * row["kept"] / row["sampled"] if row["sampled"] else math.nan
                    for name, row in by_class.iterrows()
                },
            }
        )
    return pd.DataFrame(rows)


def _first_time(curve: pd.DataFrame, target: float) -> float:
    """Simulated minutes at the first evaluation reaching ``target``; NaN if none does."""
    reached = curve[curve["value"] >= target]
    return float(reached["time"].iloc[0]) / 60 if len(reached) else math.nan


def clock_curves(clock: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per run on the clock and evaluated round: its fleet, setup, seed, simulated minutes and global metric."""
    frames = []
    for key, part in clock.groupby(RUN_KEYS, sort=False):
        first = part.iloc[0]
        mode = first["control"].split("_")[5]
        minutes = part.drop_duplicates("round").set_index("round")["sim_seconds"] / 60
        curve = history[
            (history["dataset"] == key[0])
            & (history["model"] == key[1])
            & (history["run"] == key[2])
            & (history["seed"] == key[3])
            & (history["metric"] == global_metric(first["dataset"]))
            & (history["letter"] == mode[0])
        ]
        frames.append(
            curve[["round", "value"]].assign(
                dataset=key[0],
                data_split_mode=first["data_split_mode"],
                fleet=first["fleet"],
                setup=setup_label(first["run"], first["method"], mode),
                seed=key[3],
                minutes=curve["round"].map(minutes),
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _mean_sd(values: pd.Series, digits: int = 1) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _paired(rows: pd.DataFrame, reference: pd.DataFrame, column: str) -> str:
    joined = rows[["seed", column]].merge(reference[["seed", column]], on="seed", suffixes=("", "_ref")).dropna()
    mean, low, high, n = paired_interval((joined[column] - joined[f"{column}_ref"]).tolist())
    if n == 0:
        return "-"
    return f"{mean:+.1f}" + ("" if math.isnan(low) else f" [{low:+.1f}, {high:+.1f}]")


def clock_tables(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    clock: pd.DataFrame,
    targets: tuple[float, ...] = TARGETS,
    budget: float = BUDGET,
) -> list[Table]:
    """``clock_{D}_{S}`` per dataset and split that has runs on the clock (``runs`` names the healthy ones)."""
    if clock.empty:
        return []
    healthy = set(runs["run"] + "/" + runs["seed"].astype(str))
    clock = clock[(clock["run"] + "/" + clock["seed"].astype(str)).isin(healthy)]
    table = per_run(clock, history, targets, budget)
    if table.empty:
        return []
    tables = []
    for (dataset, split), part in table.groupby(["dataset", "data_split_mode"], sort=True):
        rows, raw = [], []
        for fleet, in_fleet in part.groupby("fleet", sort=True):
            reference = in_fleet[in_fleet["setup"] == REFERENCE]
            class_columns = [c for c in in_fleet.columns if c.startswith("kept_") and in_fleet[c].notna().any()]
            for setup, runs_of in in_fleet.groupby("setup", sort=False):
                times = {}
                for target in targets:
                    column, reached = f"to_{target:g}", int(runs_of[f"to_{target:g}"].notna().sum())
                    times[f"Time to {target:g} % (min)"] = f"{_mean_sd(runs_of[column])} ({reached}/{len(runs_of)})"
                    times[f"Δ time to {target:g} %"] = _paired(runs_of, reference, column)
                rows.append(
                    {
                        "Fleet": fleet,
                        "Setup": setup,
                        "Final (%)": _mean_sd(runs_of["final"]),
                        "Run time (min)": _mean_sd(runs_of["minutes"]),
                        **times,
                        f"Within {budget / 60:g} min (%)": _mean_sd(runs_of["within_budget"]),
                        "Updates lost (%)": _mean_sd(runs_of["lost"], 0),
                        "Compute wasted (%)": _mean_sd(runs_of["wasted"], 0),
                        "Data kept per class (%)": ", ".join(
                            f"{c.removeprefix('kept_')} {runs_of[c].mean():.0f}" for c in class_columns
                        ),
                        "Δ within budget": _paired(runs_of, reference, "within_budget"),
                    }
                )
                raw.append(runs_of)
        reached = " and ".join(f"{target:g} %" for target in targets)
        caption = (
            f"{dataset} {split} on the simulated clock: per fleet and setup, mean ± sd over seeds; simulated minutes"
            f" to {reached} global accuracy (runs reaching it / runs) and the accuracy within {budget / 60:g}"
            f" simulated minutes, each Δ paired by seed against '{REFERENCE}' of the same fleet (mean [95 %"
            " t-interval]); lost updates, wasted client compute and the share of each device class's sampled training"
            " data that reached the model"
        )
        tables.append(Table(f"clock_{dataset}_{split}", pd.DataFrame(rows), pd.concat(raw), caption))
    return tables


def clock_tables_beside(runs_csv, runs: pd.DataFrame) -> list[Table]:
    """The clock tables from the ``clock.csv`` and ``history.csv`` beside ``runs_csv``; none without them."""
    from pathlib import Path

    from heterofl.csv_checks import read_summary_history

    folder = Path(runs_csv).parent
    if not (folder / "clock.csv").is_file() or not (folder / "history.csv").is_file():
        return []
    clock = pd.read_csv(folder / "clock.csv")
    if clock.empty:
        return []
    return clock_tables(runs, read_summary_history(folder / "history.csv"), clock)


__all__ = ["BUDGET", "TARGETS", "clock_curves", "clock_tables", "clock_tables_beside", "per_run", "setup_label"]

"""What a configuration spends to learn: communication and client compute to first reach X % of its final model.

HeteroFL (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264) is about computation and
communication efficiency. From the per-round accounting (``summary/cost.csv``, :mod:`heterofl.accounting`) and
the learning curves (``summary/history.csv``), one table per dataset and split, ``cost_{D}_{S}``, gives for
every configuration (control string and method), as the mean over seeds:

* the run's final global accuracy (the last evaluation of the global model, the mode's first rate);
* for X = 90 and 95: the first *evaluation* round at which the global accuracy is at least X % of that run's
  final accuracy, and the cumulative communication (bytes to plus bytes from clients, in MB of 2^20 bytes, as
  the paper's Space column) and client training compute (MACs, forward and backward) of every round up to and
  including that one. Only evaluated rounds can tell that a level was reached, so with ``eval_every`` > 1 the
  numbers are those of the first evaluation at or above the level. The final round always evaluates, so every
  run reaches every level;
* the run's totals: communication, client compute and the server's static BN plus evaluation compute; for
  FIARSE, whose clients train the dense model under a mask, also what its uploads would weigh if sent sparse
  (values plus indices, ``sparse_bytes_from_clients``): the communication columns count its dense uploads.

For perplexity (WikiText2, lower is better) "X %" reads "within 100 - X %": the first evaluation whose
perplexity is at most (2 - X/100) times the final one, i.e. within 10 % (X = 90) or 5 % (X = 95) of it.

Only runs whose every round is in ``cost.csv`` enter (older runs, trained before the accounting, have no rows;
a run resumed across that change has rows for part of its rounds); a dataset and split without such runs has
no table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from heterofl.report.methods import run_variant
from heterofl.report.seed_stats import global_metric, letter_order, metric_word
from heterofl.report.tables import Table

LEVELS = (90, 95)
MB = 2**20
"""Bytes per MB: MiB, as the paper's (and ``complexity.space_mb``'s) Space (MB)."""
RUN_KEYS = ["dataset", "model", "run", "control", "method", "seed"]
CONFIG_COLUMNS = ["control", "method", "model_mode", "model_split_mode", "global_letter"]


def _keys(*frames: pd.DataFrame) -> list[str]:
    """The run keys every frame has (summaries written before ``run``/``method`` existed lack them)."""
    return [k for k in RUN_KEYS if all(k in f.columns for f in frames)]


def _reached(values: pd.Series, final: float, level: int, lower_is_better: bool) -> pd.Series:
    slack = 1e-9 * abs(final)  # 0.9 * 95 must not miss 85.5 by a rounding error
    if lower_is_better:
        return values <= (2 - level / 100) * final + slack
    return values >= level / 100 * final - slack


def run_costs(
    curve: pd.DataFrame, cost: pd.DataFrame, lower_is_better: bool = False, levels: tuple[int, ...] = LEVELS
) -> dict | None:
    """One run: final value, and per level the first evaluated round reaching it with the cost spent by then.

    ``curve`` holds the run's evaluations of its global metric (``round``, ``value``); ``cost`` its rows of
    ``cost.csv``. None when the run's cost rows do not cover every round 1..last.
    """
    curve = curve.sort_values("round")
    cost = cost.sort_values("round").set_index("round")
    if curve.empty or cost.empty or list(cost.index) != list(range(1, int(curve["round"].max()) + 1)):
        return None
    spent = pd.DataFrame(
        {
            "communication": cost["bytes_to_clients"] + cost["bytes_from_clients"],
            "client": cost["client_train_macs"],
            "server": cost["server_static_bn_macs"] + cost["server_eval_macs"],
        }
    ).cumsum()
    final = float(curve["value"].iloc[-1])
    row = {
        "final": final,
        "total_mb": spent["communication"].iloc[-1] / MB,
        "total_client_macs": float(spent["client"].iloc[-1]),
        "total_server_macs": float(spent["server"].iloc[-1]),
    }
    if "sparse_bytes_from_clients" in cost.columns and cost["sparse_bytes_from_clients"].notna().all():
        row["total_sparse_upload_mb"] = float(cost["sparse_bytes_from_clients"].sum()) / MB
    for level in levels:
        hit = curve.loc[_reached(curve["value"], final, level, lower_is_better), "round"]
        round_ = int(hit.iloc[0])
        row[f"round_{level}"] = round_
        row[f"mb_{level}"] = spent.at[round_, "communication"] / MB
        row[f"client_macs_{level}"] = float(spent.at[round_, "client"])
    return row


def cost_table(runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame, dataset: str, split: str) -> Table | None:
    """``cost_{dataset}_{split}``, or None when no run of the dataset and split has complete accounting."""
    if runs.empty or history.empty or cost.empty:
        return None
    keys = _keys(runs, history, cost)
    metric = global_metric(dataset)
    lower = metric.endswith("Perplexity")
    configs = runs[(runs["dataset"] == dataset) & (runs["data_split_mode"] == split)]
    configs = configs[[*keys, *(c for c in CONFIG_COLUMNS if c not in keys and c in configs.columns)]]
    configs = configs.drop_duplicates(keys)
    if "method" not in configs.columns:
        configs = configs.assign(method="heterofl")
    curves = history[(history["dataset"] == dataset) & (history["metric"] == metric)]
    curves = {key: part for key, part in curves.groupby(keys, sort=False)}
    spent = {key: part for key, part in cost[cost["dataset"] == dataset].groupby(keys, sort=False)}
    per_run = []
    for config in configs.itertuples(index=False):
        key = tuple(getattr(config, k) for k in keys)
        curve, rows = curves.get(key), spent.get(key)
        if curve is None or rows is None:
            continue
        curve = curve[curve["letter"] == config.global_letter]
        found = run_costs(curve, rows, lower)
        if found is not None:
            per_run.append({c: getattr(config, c) for c in configs.columns} | found)
    if not per_run:
        return None
    runs_frame = pd.DataFrame(per_run)
    values = [c for c in runs_frame.columns if c not in configs.columns]
    variant = ""  # a method's variants (+feddyn0.1, +server-sgd, ...) are rows of their own, not extra seeds
    if "run" in runs_frame.columns:
        variant = [run_variant(r, m) for r, m in zip(runs_frame["run"], runs_frame["method"], strict=True)]
    runs_frame = runs_frame.assign(variant=variant)
    group = ["control", "method", "variant", "model_mode", "model_split_mode", "global_letter"]
    raw = runs_frame.groupby(group, sort=False)[values].mean().reset_index()
    raw["n"] = runs_frame.groupby(group, sort=False).size().to_numpy()
    raw = (
        raw.assign(_g=raw["global_letter"].map(letter_order))
        .sort_values(["_g", "model_split_mode", "model_mode", "control", "method", "variant"], kind="stable")
        .drop(columns=["_g"] if raw["variant"].any() else ["_g", "variant"])  # the old columns when no variant
        .reset_index(drop=True)
    )
    return Table(
        f"cost_{dataset}_{split}",
        _formatted(raw, dataset, lower),
        raw,
        _caption(dataset, split, lower, "total_sparse_upload_mb" in raw.columns),
    )


def _mac_unit(raw: pd.DataFrame) -> tuple[str, float]:
    """GMAC, or TMAC when the largest client total reaches 10^12 MACs: one unit for the whole table."""
    return ("TMAC", 1e12) if raw["total_client_macs"].max() >= 1e12 else ("GMAC", 1e9)


def _formatted(raw: pd.DataFrame, dataset: str, lower: bool) -> pd.DataFrame:
    unit, scale = _mac_unit(raw)
    table = pd.DataFrame({"Control": raw["control"], "Model": raw["model_mode"], "Mode": raw["model_split_mode"]})
    methods = raw["method"] + (raw["variant"].map(lambda v: f" ({v})" if v else "") if "variant" in raw else "")
    if methods.nunique() > 1:
        table["Method"] = methods
    table[f"Final {metric_word(dataset).lower()}"] = raw["final"].map(lambda v: f"{v:.2f}")
    for level in LEVELS:
        tag = f"within {100 - level} % of final" if lower else f"{level} % of final"
        table[f"Round to {tag}"] = raw[f"round_{level}"].map(
            lambda v: f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
        )
        table[f"MB to {tag}"] = raw[f"mb_{level}"].map(lambda v: f"{v:,.1f}")
        table[f"Client {unit} to {tag}"] = raw[f"client_macs_{level}"].map(lambda v: f"{v / scale:,.2f}")
    table["Total MB"] = raw["total_mb"].map(lambda v: f"{v:,.1f}")
    if "total_sparse_upload_mb" in raw.columns:  # FIARSE's runs: their uploads, if sent sparse
        table["Sparse upload MB"] = raw["total_sparse_upload_mb"].map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}")
    table[f"Total client {unit}"] = raw["total_client_macs"].map(lambda v: f"{v / scale:,.2f}")
    table[f"Total server {unit}"] = raw["total_server_macs"].map(lambda v: f"{v / scale:,.2f}")
    table["Seeds"] = raw["n"].astype(int).astype(str)
    return table


def _caption(dataset: str, split: str, lower: bool, sparse: bool = False) -> str:
    if lower:
        level = "first evaluation whose global perplexity is within 10 % / 5 % of the run's final perplexity"
    else:
        level = "first evaluation whose global accuracy is at least 90 % / 95 % of the run's final accuracy"
    return (
        f"{dataset} {split}: communication (MB sent to plus received from clients, float32 parameters) and client "
        f"training compute (true MACs x samples x 3) summed over every round up to the {level}, and the run's "
        "totals (server: static BN and evaluation passes); means over seeds."
        + (
            " Sparse upload MB: FIARSE's uploads sent as values plus indices (its MB columns count them dense)."
            if sparse
            else ""
        )
    )


def cost_tables(runs: pd.DataFrame, history: pd.DataFrame, cost: pd.DataFrame) -> list[Table]:
    """Every ``cost_{D}_{S}`` the runs support, in dataset and split order."""
    if runs.empty:
        return []
    pairs = runs[["dataset", "data_split_mode"]].drop_duplicates().sort_values(["dataset", "data_split_mode"])
    tables = [cost_table(runs, history, cost, d, s) for d, s in pairs.itertuples(index=False)]
    return [t for t in tables if t is not None]


def cost_tables_beside(runs_csv: str | Path, runs: pd.DataFrame) -> list[Table]:
    """The cost tables from the ``history.csv`` and ``cost.csv`` written beside ``runs_csv`` by ``heterofl
    aggregate`` (the same step writes all three); none when either is absent, as in summaries from before the
    accounting existed."""
    from heterofl.csv_checks import read_summary_cost, read_summary_history

    folder = Path(runs_csv).parent
    if not (folder / "cost.csv").is_file() or not (folder / "history.csv").is_file():
        return []
    cost = read_summary_cost(folder / "cost.csv")
    if cost.empty:
        return []
    return cost_tables(runs, read_summary_history(folder / "history.csv"), cost)


__all__ = ["LEVELS", "MB", "cost_table", "cost_tables", "cost_tables_beside", "run_costs"]

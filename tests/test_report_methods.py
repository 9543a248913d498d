"""The method-comparison table and figure against hand computations on a fabricated runs.csv (no training)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from heterofl.report import write_figures, write_tables
from heterofl.report.collect import HISTORY_COLUMNS
from heterofl.report.figures.methods import method_figure, method_plot
from heterofl.report.methods import (
    method_table,
    method_tables,
    paired_interval,
    t_quantile,
    with_methods,
    write_method_table,
)

SPLIT = "non-iid-2"
DYNAMIC = ("dynamic", "a1-e1")
FIX = ("fix", "a1-c2-e7")
# method -> seed -> Global accuracy at letter a; letter b is 2 lower, Local is 10 higher, "best" is 1 higher
# (every accuracy within 0..100, as the summary readers require).
BASE = {
    "heterofl": {0: 80.0, 1: 82.0, 2: 81.0},
    "fedrolex": {0: 83.0, 1: 82.5, 2: 85.0},
    "fd": {0: 70.0, 1: 71.0, 2: 69.0},
}


def value(method: str, seed: int, letter: str, local: bool, offset: float = 0.0) -> float:
    return BASE[method][seed] - 2.0 * "ab".index(letter) + (10.0 if local else 0.0) + offset


def fake_runs(
    dataset: str = "MNIST5k",
    model: str = "conv",
    methods: dict[str, dict[int, float]] | None = None,
    configs: tuple[tuple[str, str], ...] = (DYNAMIC, FIX),
    split: str = SPLIT,
) -> pd.DataFrame:
    """runs.csv rows (letters a, b; Global and Local; the FIX configuration 1 lower) as collect_runs writes them."""
    methods = BASE if methods is None else methods
    metrics = (("Global-Perplexity", False),) if dataset == "WikiText2" else (
        ("Global-Accuracy", False), ("Local-Accuracy", True)
    )  # fmt: skip
    rows = []
    for split_mode, model_mode in configs:
        control = f"1_100_0.1_{split}_{split_mode}_{model_mode}_bn_1_1"
        shift = -1.0 if (split_mode, model_mode) == FIX else 0.0
        for method, seeds in methods.items():
            for seed in seeds:
                for letter in "ab":
                    for metric, local in metrics:
                        v = value(method, seed, letter, local, shift) if methods is BASE else seeds[seed]
                        rows.append(
                            {
                                "dataset": dataset,
                                "model": model,
                                "run": control if method == "heterofl" else f"{control}+{method}",
                                "control": control,
                                "method": method,
                                "seed": seed,
                                "fed": 1,
                                "num_users": 100,
                                "frac": 0.1,
                                "data_split_mode": split,
                                "model_split_mode": split_mode,
                                "model_mode": model_mode,
                                "norm": "bn",
                                "scale": 1,
                                "mask": 1,
                                "global_letter": "a",
                                "resnet_blocks": "1-1-1-2",
                                "letter": letter,
                                "rate": 1.0 if letter == "a" else 0.5,
                                "metric": metric,
                                "final": v,
                                "best": v + 1.0,
                                "mean_last_k": v + 0.25,
                            }
                        )
    return pd.DataFrame(rows)


def cell(table, section: str, method: str, column: str) -> str:
    frame = table.table
    return frame[(frame["Configuration"] == section) & (frame["Method"] == method)][column].iloc[0]


def raw_row(table, section: str, label: str, kind: str, letter: str) -> pd.Series:
    raw = table.raw
    hit = raw[(raw["section"] == section) & (raw["label"] == label) & (raw["kind"] == kind) & (raw["letter"] == letter)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_mean_std_and_best_per_column() -> None:
    table = method_table(fake_runs(), "final", "MNIST5k", SPLIT)
    assert table is not None and table.stem == f"methods_MNIST5k_{SPLIT}"
    sections = list(dict.fromkeys(table.table["Configuration"]))
    assert sections == ["dynamic a1-e1", "fix a1-c2-e7"]
    assert list(table.table.columns) == ["Configuration", "Method", "Global a", "Global b", "Local a", "Local b"]
    methods = table.table[table.table["Configuration"] == "dynamic a1-e1"]["Method"].tolist()
    assert methods == [
        "HeteroFL",
        "FedRolex",
        "Federated Dropout",
        "FedRolex - HeteroFL",
        "Federated Dropout - HeteroFL",
    ]
    rolex = [value("fedrolex", s, "b", True) for s in range(3)]
    row = raw_row(table, "dynamic a1-e1", "FedRolex", "Local", "b")
    assert (row["mean"], row["std"], row["n"]) == (
        pytest.approx(statistics.mean(rolex)),
        pytest.approx(statistics.stdev(rolex)),
        3,
    )
    expected = f"{statistics.mean(rolex):.2f} ± {statistics.stdev(rolex):.2f}"
    assert cell(table, "dynamic a1-e1", "FedRolex", "Local b") == f"**{expected}**"  # 83.5 - 2 + 10 beats 81 - 2 + 10
    heterofl = [value("heterofl", s, "a", False, -1.0) for s in range(3)]
    assert cell(table, "fix a1-c2-e7", "HeteroFL", "Global a") == f"{statistics.mean(heterofl):.2f} ± 1.00"
    best = table.raw.loc[table.raw["best"], ["section", "label"]].drop_duplicates()
    assert set(best["label"]) == {"FedRolex"} and len(table.raw[table.raw["best"]]) == 8  # 2 sections x 4 columns
    # the value column chosen is the one used: "best" is 1 above "final" in every run
    other = method_table(fake_runs(), "best", "MNIST5k", SPLIT)
    assert raw_row(other, "dynamic a1-e1", "FedRolex", "Local", "b")["mean"] == pytest.approx(
        statistics.mean(rolex) + 1
    )


def test_lower_perplexity_is_best_and_no_local_columns() -> None:
    methods = {"heterofl": {0: 40.0, 1: 42.0}, "fedrolex": {0: 45.0, 1: 47.0}}
    table = method_table(fake_runs("WikiText2", "transformer", methods, (DYNAMIC,), "iid"), "final", "WikiText2", "iid")
    assert list(table.table.columns) == ["Configuration", "Method", "Global a", "Global b"]
    assert cell(table, "dynamic a1-e1", "HeteroFL", "Global a") == "**41.00 ± 1.41**"
    assert cell(table, "dynamic a1-e1", "FedRolex", "Global a") == "46.00 ± 1.41"
    assert "lower is better" in table.caption


def test_paired_difference_and_interval_match_hand_computation() -> None:
    table = method_table(fake_runs(), "final", "MNIST5k", SPLIT)
    differences = [BASE["fedrolex"][s] - BASE["heterofl"][s] for s in range(3)]  # 3.0, 0.5, 4.0
    mean = statistics.mean(differences)
    half = 4.302653 * statistics.stdev(differences) / math.sqrt(3)  # t_{0.975, 2} = 4.302653
    row = raw_row(table, "dynamic a1-e1", "FedRolex", "Global", "a")
    assert row["diff_mean"] == pytest.approx(2.5)
    assert (row["diff_low"], row["diff_high"], row["diff_n"]) == (
        pytest.approx(mean - half),
        pytest.approx(mean + half),
        3,
    )
    assert (
        cell(table, "dynamic a1-e1", "FedRolex - HeteroFL", "Global a")
        == f"+2.50 [{mean - half:.2f}, {mean + half:.2f}]"
    )
    fd = raw_row(table, "fix a1-c2-e7", "Federated Dropout", "Local", "b")
    assert fd["diff_mean"] == pytest.approx(-11.0)  # 70, 71, 69 against 80, 82, 81
    assert math.isnan(raw_row(table, "dynamic a1-e1", "HeteroFL", "Global", "a")["diff_mean"])


def test_pairs_by_seed_and_one_seed_has_no_interval() -> None:
    runs = fake_runs()
    runs = runs[~((runs["method"] == "fedrolex") & (runs["seed"] > 0))]  # FedRolex ran seed 0 only
    runs = runs[~((runs["method"] == "heterofl") & (runs["seed"] == 1))]  # HeteroFL lacks seed 1
    table = method_table(runs, "final", "MNIST5k", SPLIT)
    row = raw_row(table, "dynamic a1-e1", "FedRolex", "Global", "a")
    assert (row["diff_mean"], row["diff_n"]) == (pytest.approx(3.0), 1) and math.isnan(row["diff_low"])
    assert math.isnan(row["std"])
    assert cell(table, "dynamic a1-e1", "FedRolex - HeteroFL", "Global a") == "+3.00 (n=1)"
    assert (
        cell(table, "dynamic a1-e1", "FedRolex", "Global a") == "**83.00**"
    )  # one seed: the mean alone (and the best)
    fd = raw_row(table, "dynamic a1-e1", "Federated Dropout", "Global", "a")
    assert (fd["diff_n"], fd["diff_mean"]) == (2, pytest.approx(statistics.mean([70 - 80, 69 - 81])))  # seeds 0, 2


def test_single_method_or_missing_method_column_gives_no_table() -> None:
    heterofl_only = fake_runs(methods={"heterofl": BASE["heterofl"]})
    assert method_table(heterofl_only, "final", "MNIST5k", SPLIT) is None
    assert method_tables(heterofl_only, "final") == []
    old = fake_runs().drop(columns=["method", "run"])  # a runs.csv from before methods: all HeteroFL
    assert set(with_methods(old)["method"]) == {"heterofl"} and set(with_methods(old)["label"]) == {"HeteroFL"}
    assert method_tables(old, "final") == []
    mixed = fake_runs()
    mixed["method"] = mixed["method"].where(mixed["method"] != "heterofl")  # empty cells are HeteroFL as well
    table = method_table(mixed, "final", "MNIST5k", SPLIT)
    assert raw_row(table, "dynamic a1-e1", "FedRolex", "Global", "a")["diff_mean"] == pytest.approx(2.5)


def test_configuration_run_by_one_method_only_is_left_out() -> None:
    runs = fake_runs()
    runs = runs[~((runs["model_mode"] == "a1-c2-e7") & (runs["method"] != "heterofl"))]
    table = method_table(runs, "final", "MNIST5k", SPLIT)
    assert list(dict.fromkeys(table.table["Configuration"])) == ["dynamic a1-e1"]


def test_t_quantile_and_interval() -> None:
    # Published two-sided 95 % t-table values (any statistics textbook's table).
    assert t_quantile(1) == pytest.approx(12.706205) and t_quantile(30) == pytest.approx(2.042272)
    assert t_quantile(31) == pytest.approx(2.039513, abs=1e-5) and t_quantile(120) == pytest.approx(1.979930, abs=1e-5)
    assert paired_interval([])[3] == 0 and math.isnan(paired_interval([2.0])[1])
    mean, low, high, n = paired_interval([1.0, 3.0])
    assert (mean, n) == (2.0, 2) and high - mean == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2))


def test_written_files_mark_best_in_markdown_and_latex(tmp_path) -> None:
    table = method_table(fake_runs(), "final", "MNIST5k", SPLIT)
    paths = write_method_table(tmp_path, table)
    assert [p.name for p in paths] == [f"{table.stem}.{e}" for e in ("csv", "md", "tex")] + [f"{table.stem}_raw.csv"]
    assert "**" in paths[1].read_text() and "## fix a1-c2-e7" in paths[1].read_text()
    tex = paths[2].read_text()
    assert r"\textbf{" in tex and "**" not in tex and r"$\pm$" in tex and tex.count(r"\begin{tabular}") == 2
    assert "**" not in paths[0].read_text()
    assert pd.read_csv(paths[3])["best"].any()


def test_figure_has_one_panel_per_configuration(tmp_path) -> None:
    table = method_table(fake_runs(), "final", "MNIST5k", SPLIT)
    fig = method_plot(table, "MNIST5k", SPLIT)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["dynamic a1-e1", "fix a1-c2-e7"]
    assert all(len(ax.containers) == 3 for ax in panels)  # one error-bar line per method
    # Under each, the full model alone on its own scale (issue 24: the rates panel's range hid its differences).
    zooms = [ax for ax in fig.axes if ax.get_visible() and not ax.get_title() and not ax.get_legend()]
    assert len(zooms) == 2
    raw = table.raw[table.raw["kind"] == "Global"]
    for panel, zoom in zip(panels, zooms, strict=True):
        full = raw[(raw["section"] == panel.get_title()) & (raw["letter"] == raw["global_letter"])]
        assert [t.get_text() for t in zoom.get_yticklabels()] == full["label"].tolist()
        drawn = [float(c.lines[0].get_xdata()[0]) for c in zoom.containers]
        assert drawn == pytest.approx(full["mean"].tolist())
        low, high = zoom.get_xlim()
        assert high - low < np.ptp(panel.get_ylim())  # a narrower range than the rates panel's axis
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["HeteroFL", "FedRolex", "Federated Dropout"]
    written = method_figure(table, "MNIST5k", SPLIT, tmp_path)
    assert sorted(p.name for p in written) == [f"methods_MNIST5k_{SPLIT}.pdf", f"methods_MNIST5k_{SPLIT}.png"]
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writes_table_figure_and_index(tmp_path) -> None:
    runs_csv, history_csv = tmp_path / "runs.csv", tmp_path / "history.csv"
    fake_runs().to_csv(runs_csv, index=False)
    pd.DataFrame(columns=HISTORY_COLUMNS).to_csv(history_csv, index=False)
    tables = write_tables(runs_csv, tmp_path / "tables", "final")
    assert tmp_path / "tables" / f"methods_MNIST5k_{SPLIT}.md" in tables
    index = (tmp_path / "tables" / "index.md").read_text()
    assert f"`methods_MNIST5k_{SPLIT}`: MNIST5k {SPLIT}: methods compared" in index
    figures = write_figures(runs_csv, history_csv, tmp_path / "figures", "final")
    assert tmp_path / "figures" / f"methods_MNIST5k_{SPLIT}.png" in figures

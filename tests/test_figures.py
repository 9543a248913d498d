"""Every report figure on a fabricated MNIST5k grid (no training): one seed, several seeds, one evaluation per run.

The figures are inspected as matplotlib objects before they are saved: no visible panel holds fewer than two
data points, every series has a marker, every panel with several series has them in a legend, and the drawn
numbers are the fabricated ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh
from matplotlib.container import ErrorbarContainer

from heterofl.rates import RATE_OF_LETTER, ModelMode, letters_up_to
from heterofl.report import write_figures
from heterofl.report.figures import FIGURES
from heterofl.report.figures.cost_curves import cost_curves_figure, cost_curves_plot
from heterofl.report.figures.interpolation import interpolation_plot
from heterofl.report.figures.learning_curves import learning_curves_figure, learning_curves_plot
from heterofl.report.figures.pareto import pareto_front, pareto_plot
from heterofl.report.figures.rates_heatmap import rates_heatmap_plot
from heterofl.report.figures.shared import config_label, family
from heterofl.report.seed_stats import seed_stats
from heterofl.report.tables import interpolation_table

pytestmark = [
    pytest.mark.filterwarnings("error"),  # no matplotlib, seaborn or pandas warning while drawing
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # another test's leak, reported wherever GC runs
]

DATASET = "MNIST5k"
SPLITS = ("iid", "non-iid-2")
CONV_PARAMS = {"a": 1_556_874, "b": 391_370, "c": 98_922, "d": 25_274, "e": 6_594}  # spec section 8
# (model_split_mode, model_mode) -> IID global accuracy of the global model at its own rate, seed 0, last round.
GRID = {
    ("fix", "a1"): 95.0,
    ("fix", "c1"): 92.0,
    ("fix", "e1"): 88.0,
    ("dynamic", "a1-e1"): 93.0,
    ("dynamic", "a1-b1-c1-d1-e1"): 92.5,
    ("fix", "a8-e2"): 94.5,
    ("fix", "a5-e5"): 93.5,
    ("fix", "a2-e8"): 91.0,
    ("fix", "a5-c5"): 94.0,
    ("fix", "c5-e5"): 90.0,
}
NON_IID_SHIFT, LOCAL_SHIFT, LETTER_STEP, SEED_STEP, ROUND_STEP = -20.0, 5.0, 3.0, 0.5, 1.0  # accuracies stay in 0..100
BYTES_PER_PARAM, SAMPLES = 4, 250


def control(split: str, split_mode: str, model_mode: str) -> str:
    return f"1_20_0.25_{split}_{split_mode}_{model_mode}_bn_1_1"


def accuracy(split: str, key: tuple[str, str], letter: str, seed: int, local: bool = False) -> float:
    """The fabricated final accuracy of the global model evaluated at ``letter``."""
    value = GRID[key] + (NON_IID_SHIFT if split != "iid" else 0.0) + (LOCAL_SHIFT if local else 0.0)
    below = "abcde".index(letter) - "abcde".index(ModelMode.parse(key[1]).letters[0])
    return value - LETTER_STEP * below + SEED_STEP * seed


def clients_params(model_mode: str) -> float:
    """Bytes of one round: 5 clients at the proportion-weighted parameter count, float32."""
    return 5 * ModelMode.parse(model_mode).mean_ratio(CONV_PARAMS) * BYTES_PER_PARAM


def fabricate(seeds: tuple[int, ...], rounds: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs.csv, history.csv and cost.csv rows as the aggregation writes them."""
    runs, history, cost = [], [], []
    last = rounds[-1]
    for split in SPLITS:
        metrics = [("Global-Accuracy", False)] + ([("Local-Accuracy", True)] if split != "iid" else [])
        for key in GRID:
            split_mode, model_mode = key
            mode = ModelMode.parse(model_mode)
            name = control(split, split_mode, model_mode)
            for seed in seeds:
                ident = {"dataset": DATASET, "model": "conv", "run": name, "control": name, "method": "heterofl"}
                ident["seed"] = seed
                config = {
                    "fed": 1, "num_users": 20, "frac": 0.25, "data_split_mode": split, "model_split_mode": split_mode,
                    "model_mode": model_mode, "norm": "bn", "scale": 1, "mask": 1, "global_letter": mode.letters[0],
                    "resnet_blocks": "1-1-1-2",
                }  # fmt: skip
                for letter in letters_up_to(mode.global_rate):
                    for metric, local in metrics:
                        v = accuracy(split, key, letter, seed, local)
                        runs.append(
                            ident | config | {"letter": letter, "rate": RATE_OF_LETTER[letter], "metric": metric}
                            | {"final": v, "best": v + 1.0, "mean_last_k": v - 0.5}
                        )  # fmt: skip
                        for r in rounds:
                            history.append(
                                ident | {"round": r, "letter": letter, "metric": metric}
                                | {"value": v - ROUND_STEP * (last - r)}
                            )  # fmt: skip
                for r in range(1, last + 1):
                    moved = clients_params(model_mode)
                    cost.append(
                        ident | {"round": r, "bytes_to_clients": moved, "bytes_from_clients": moved}
                        | {"client_train_macs": 1e6 * moved, "server_static_bn_macs": 1e9, "server_eval_macs": 2e9}
                    )  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(history), pd.DataFrame(cost)


VARIANTS = {
    "one-seed": ((0,), (2, 4, 6, 8)),
    "three-seeds": ((0, 1, 2), (2, 4, 6, 8)),
    "one-evaluation": ((0,), (8,)),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def grid(request):
    seeds, rounds = VARIANTS[request.param]
    runs, history, cost = fabricate(seeds, rounds)
    return request.param, runs, history, cost


def interpolation_tables(runs: pd.DataFrame, value: str = "final") -> dict:
    stats = seed_stats(runs, value)
    return {split: interpolation_table(stats, DATASET, split) for split in SPLITS}


# --- what every figure must satisfy -------------------------------------------------------------------------------


def points(ax) -> int:
    """Data points a reader sees: finite marker positions of lines, scatter offsets, filled heatmap cells."""
    count = 0
    for line in ax.get_lines():
        if line.get_marker() in (None, "None", "", " "):
            continue
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        count += int(np.sum(np.isfinite(x) & np.isfinite(y)))
    for collection in ax.collections:
        if isinstance(collection, PathCollection):
            count += len(collection.get_offsets())
        if isinstance(collection, QuadMesh):
            count += int(np.ma.count(collection.get_array()))
    return count


def series(ax) -> dict[str, matplotlib.lines.Line2D]:
    """Label -> data line of every named series: plain lines and error-bar containers (which hold the label)."""
    out = {c.get_label(): c.lines[0] for c in ax.containers if isinstance(c, ErrorbarContainer)}
    out.update({line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")})
    return out


def legend_texts(fig) -> set[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    return {t.get_text() for legend in legends if legend is not None for t in legend.get_texts()}


def panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def check_figure(fig) -> None:
    """No visible panel with fewer than two points; markers on every series; a legend for several series."""
    assert fig is not None
    shown = panels(fig)
    assert shown, "a figure without a visible panel"
    texts = legend_texts(fig)
    for ax in shown:
        assert points(ax) >= 2, f"panel {ax.get_title()!r} has {points(ax)} point(s)"
        for label, line in series(ax).items():
            assert line.get_marker() not in (None, "None", "", " "), f"{label} has no marker"
        labels = set(series(ax))
        if len(labels) >= 2:
            assert labels <= texts, f"{labels - texts} are in no legend"
    assert fig.get_suptitle() or all(ax.get_title() for ax in shown)
    matplotlib.pyplot.close(fig)


# --- the vocabulary -----------------------------------------------------------------------------------------------


def test_families_and_labels_follow_the_paper() -> None:
    assert [family(*key[::-1]) for key in [("fix", "a1"), ("dynamic", "a1-e1"), ("fix", "a8-e2")]] == [
        "single rates",
        "combinations",
        "interpolations",
    ]
    assert family("a1-c2-e7", "fix") == "combinations"  # three letters: not an interpolation
    assert config_label("a1", "fix") == "a" and config_label("a1-e1", "dynamic") == "a-e"
    assert config_label("a8-e2", "fix") == "a8-e2" and config_label("a1-c2-e7", "fix") == "a1-c2-e7 (fix)"


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    x, y = [1, 2, 3, 3, 4, 5], [10, 9, 12, 13, 12, 14]
    assert pareto_front(x, y) == [0, 3, 5]  # (3, 13) beats (3, 12) at the same cost; (4, 12) is beaten by it
    assert pareto_front(x, [-v for v in y], higher_is_better=False) == [0, 3, 5]
    assert pareto_front([1.0], [5.0]) == [0]


# --- each figure on each grid -------------------------------------------------------------------------------------


def test_interpolation_has_every_pair_and_no_lone_endpoint(grid) -> None:
    name, runs, _, _ = grid
    fig = interpolation_plot(interpolation_tables(runs), DATASET)
    axes = np.array(panels(fig)).reshape(2, -1)
    assert [ax.get_title() for ax in axes[0]] == [
        "iid: global accuracy",
        "non-iid-2: global accuracy",
        "non-iid-2: local accuracy",
    ]
    for column in axes.T:
        for ax in column:
            assert list(series(ax)) == ["a-c", "a-e", "c-e"]  # no "e" alone
        top, bottom = column
        assert top.get_ylim() == bottom.get_ylim()  # the same numbers against two x axes: one y range
        a_e = series(top)["a-e"]
        assert list(a_e.get_xdata()) == pytest.approx([0.0, 20.0, 50.0, 80.0, 100.0])
        a_e = series(bottom)["a-e"]
        assert a_e.get_xdata()[-1] == CONV_PARAMS["a"] and a_e.get_xdata()[0] == CONV_PARAMS["e"]
        assert bottom.get_xscale() == "log"
    iid = series(axes[0][0])["a-e"]
    seeds = VARIANTS[name][0]
    expected = [np.mean([accuracy("iid", k, "a" if k != ("fix", "e1") else "e", s) for s in seeds]) for k in (
        ("fix", "e1"), ("fix", "a2-e8"), ("fix", "a5-e5"), ("fix", "a8-e2"), ("fix", "a1"))]  # fmt: skip
    assert list(iid.get_ydata()) == pytest.approx(expected)
    assert {"a-c", "a-e", "c-e"} <= legend_texts(fig)
    check_figure(fig)


def test_interpolation_without_a_pair_of_two_points_is_not_drawn() -> None:
    runs, _, _ = fabricate((0,), (1, 2))
    lone = runs[runs["model_mode"].isin(["a5-e5", "c1"])]  # pair a-e with one point, no endpoint
    tables = interpolation_tables(lone)
    assert [len(t.raw) for t in tables.values()] == [1, 1]
    assert interpolation_plot(tables, DATASET) is None
    assert interpolation_plot({}, DATASET) is None


def test_rates_heatmap_holds_every_configuration_and_evaluated_rate(grid) -> None:
    name, runs, _, _ = grid
    seeds = VARIANTS[name][0]
    for split in SPLITS:
        fig = rates_heatmap_plot(runs, "final", DATASET, split)
        ax = panels(fig)[0]
        mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
        cells = np.ma.asarray(mesh.get_array()).reshape(len(GRID), 5)
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows == ["a", "c", "e", "a-e", "a-b-c-d-e", "a5-c5", "a8-e2", "a5-e5", "a2-e8", "c5-e5"]
        c_row = rows.index("c")
        assert np.ma.is_masked(cells[c_row, 0]) and np.ma.is_masked(cells[c_row, 1])  # rates above c: no value
        expected = np.mean([accuracy(split, ("fix", "c1"), "d", s) for s in seeds])
        assert cells[c_row, 3] == pytest.approx(expected)
        texts = [t.get_text() for t in ax.texts]
        assert f"{expected:.1f}" in " ".join(texts)
        assert any("±" in t for t in texts) == (len(seeds) > 1)
        assert mesh.get_clim() == (0.0, 100.0)  # one colour scale for both splits
        check_figure(fig)


def test_learning_curves_are_faceted_by_family_with_markers_and_seed_bands(grid) -> None:
    name, runs, history, _ = grid
    seeds, rounds = VARIANTS[name]
    for split in SPLITS:
        fig = learning_curves_plot(runs, history, DATASET, split)
        shown = panels(fig)
        if len(rounds) == 1:  # one evaluation per run: a point per configuration, not empty lines
            assert len(shown) == (1 if split == "iid" else 2)
            ax = shown[0]
            assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["a", "c", "e"]
            assert points(ax) == len(GRID)
            assert list(series(ax)) == ["single rates", "combinations", "interpolations"]
            assert "round 8" in fig.get_suptitle()
        else:
            kinds = 1 if split == "iid" else 2
            assert len(shown) == 3 * kinds
            assert [ax.get_title() for ax in shown[:3]] == ["single rates", "combinations", "interpolations"]
            singles = shown[0]
            assert list(series(singles)) == ["a", "c", "e"]
            for line in series(singles).values():
                assert list(line.get_xdata()) == list(rounds)  # a marker at every evaluation
            bands = [c for ax in shown for c in ax.collections if isinstance(c, PolyCollection)]
            assert bool(bands) == (len(seeds) > 1)
            top = [ax.get_ylim() for ax in shown[:3]]
            assert top.count(top[0]) == 3  # families of one metric share the y range
            a = series(singles)["a"]
            final = np.mean([accuracy(split, ("fix", "a1"), "a", s) for s in seeds])
            assert a.get_ydata()[-1] == pytest.approx(final)
        check_figure(fig)


def test_pareto_marks_the_front_across_all_configurations(grid) -> None:
    _, runs, _, _ = grid
    fig = pareto_plot(runs, "final", DATASET)
    shown = panels(fig)
    assert len(shown) == 6  # iid global, non-IID global and local; parameters and FLOPs
    params = shown[0]
    assert params.get_title() == "iid: global accuracy" and params.get_xscale() == "log"
    front = series(params)["Pareto front"]
    named = [t.get_text() for t in params.texts]
    assert named == ["e", "c5-e5", "c", "a-b-c-d-e", "a5-e5", "a5-c5", "a8-e2", "a"]  # by hand from GRID
    assert list(front.get_xdata())[0] == CONV_PARAMS["e"] and list(front.get_xdata())[-1] == CONV_PARAMS["a"]
    drawn = sum(len(c.get_offsets()) for c in params.collections if isinstance(c, PathCollection))
    drawn += sum(len(line.get_xdata()) for label, line in series(params).items() if label != "Pareto front")
    assert drawn == len(GRID)  # every configuration, once
    assert shown[0].get_ylim() == shown[1].get_ylim()
    check_figure(fig)


def test_cost_curves_accumulate_bytes_and_compute_to_each_evaluation(grid) -> None:
    name, runs, history, cost = grid
    rounds = VARIANTS[name][1]
    fig = cost_curves_plot(runs, history, cost, DATASET, "iid")
    shown = panels(fig)
    assert [ax.get_title() for ax in shown[:3]] == ["single rates", "combinations", "interpolations"]
    singles_bytes, singles_macs = shown[0], shown[3]
    a = series(singles_bytes)["a"]
    moved = 2 * clients_params("a1")
    assert list(a.get_xdata()) == pytest.approx([moved * r for r in rounds])  # cumulative, both directions
    a = series(singles_macs)["a"]
    assert list(a.get_xdata()) == pytest.approx([1e6 * moved / 2 * r for r in rounds])
    assert "Cumulative communication" in singles_bytes.get_xlabel()
    assert singles_bytes.xaxis.get_major_formatter().unit == "B"
    check_figure(fig)


def test_report_writes_every_figure_with_the_cost_csv_beside_history(grid, tmp_path, caplog) -> None:
    _, runs, history, cost = grid
    for name, frame in (("runs", runs), ("history", history), ("cost", cost)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)  # cost.csv is found beside history.csv, unnamed
    with caplog.at_level(logging.ERROR, logger="heterofl.report.figures"):
        written = write_figures(tmp_path / "runs.csv", tmp_path / "history.csv", tmp_path / "figures", "final")
    assert not caplog.records, "a figure's drawing failed: " + caplog.text  # draw_figures only logs a failure
    # every figure of the table that this grid's data can fill: methods need two methods, time curves a fleet
    needs_other_data = {"methods", "time_curves", "partition"}
    stems = {
        spec.file_stem(DATASET, split)
        for spec in FIGURES
        if spec.stem not in needs_other_data
        for split in ([None] if spec.per == "dataset" else SPLITS)
    }
    assert {p.stem for p in written} == stems
    assert sorted(p.suffix for p in written) == sorted([".pdf", ".png"] * len(stems))
    for path in written:
        assert path.read_bytes()[:4] in (b"%PDF", b"\x89PNG") and path.stat().st_size > 1000


def test_report_skips_cost_figures_without_cost_data(tmp_path, caplog) -> None:
    runs, history, cost = fabricate((0,), (2, 4))
    keep = runs["model_mode"].isin(["a1", "e1", "a5-e5"]) & (runs["data_split_mode"] == "iid")
    runs[keep].to_csv(tmp_path / "runs.csv", index=False)
    history.to_csv(tmp_path / "history.csv", index=False)
    with caplog.at_level(logging.INFO, logger="heterofl.report.figures"):
        written = write_figures(tmp_path / "runs.csv", tmp_path / "history.csv", tmp_path / "figures", "final")
    assert "cost_curves_MNIST5k_iid skipped: no cost data" in caplog.text
    assert written and not [p for p in written if p.stem.startswith("cost_curves")]
    cost.to_csv(tmp_path / "elsewhere.csv", index=False)  # named explicitly: drawn
    written = write_figures(
        tmp_path / "runs.csv", tmp_path / "history.csv", tmp_path / "figures", "final", tmp_path / "elsewhere.csv"
    )
    assert tmp_path / "figures" / "cost_curves_MNIST5k_iid.png" in written


def test_cost_figure_is_skipped_without_cost_data(tmp_path, caplog) -> None:
    runs, history, cost = fabricate((0,), (2, 4))
    with caplog.at_level(logging.INFO, logger="heterofl.report.figures"):
        assert cost_curves_figure(runs, history, None, DATASET, "iid", tmp_path) == []
        assert cost_curves_figure(runs, history, cost.iloc[0:0], DATASET, "iid", tmp_path) == []
        other = cost.assign(dataset="CIFAR10")  # cost rows of another dataset only
        assert cost_curves_figure(runs, history, other, DATASET, "iid", tmp_path) == []
        late = cost[cost["round"] > 1]  # trained before the accounting began: no cumulative sum to draw
        assert cost_curves_figure(runs, history, late, DATASET, "iid", tmp_path) == []
    assert caplog.text.count("cost_curves_MNIST5k_iid skipped") == 4
    assert list(tmp_path.iterdir()) == []


def test_cost_curves_leave_out_runs_with_rounds_missing(tmp_path) -> None:
    runs, history, cost = fabricate((0,), (2, 4))
    gap = cost["control"].str.contains("_fix_a1_") & (cost["round"] == 1)
    fig = cost_curves_plot(runs, history, cost[~gap], DATASET, "iid")
    singles = panels(fig)[0]
    assert list(series(singles)) == ["c", "e"]  # a1 lacks round 1: its cumulative bytes would be too low
    check_figure(fig)


def test_one_configuration_with_one_evaluation_is_skipped_not_a_single_point(tmp_path, caplog) -> None:
    runs, history, _ = fabricate((0,), (5,))
    lone = runs["model_mode"] == "a1"
    with caplog.at_level(logging.INFO, logger="heterofl.report.figures"):
        assert learning_curves_figure(runs[lone], history[history["control"].str.contains("_a1_")], DATASET,
                                      "iid", tmp_path) == []  # fmt: skip
    assert "learning_curves_MNIST5k_iid skipped" in caplog.text
    assert pareto_plot(runs[lone], "final", DATASET) is None  # one configuration: no front to draw
    assert list(tmp_path.iterdir()) == []


def test_written_figure_reads_as_an_image(tmp_path) -> None:
    runs, history, _ = fabricate((0, 1), (1, 2, 3))
    written = learning_curves_figure(runs, history, DATASET, "non-iid-2", tmp_path)
    assert [p.name for p in written] == [
        "learning_curves_MNIST5k_non-iid-2.pdf",
        "learning_curves_MNIST5k_non-iid-2.png",
    ]
    image = matplotlib.pyplot.imread(Path(written[1]))
    assert image.shape[0] > 400 and image.shape[1] > 800


def test_a_long_family_draws_an_evenly_spaced_few_in_colour_and_the_rest_in_grey() -> None:
    """Nine interpolations of four points each read as noise (issue 24): five in colour with markers (the largest
    and smallest share and three between), the other four as thin grey lines under one legend entry."""
    import matplotlib.pyplot as plt

    from heterofl.report.figures.shared import (
        CONTEXT_LABEL,
        PALETTE,
        draw_family,
        emphasised,
        family,
        ordered_labels,
        series_styles,
    )

    modes = [f"a{i}-e{10 - i}" for i in range(9, 0, -1)]
    configs = pd.DataFrame(
        {
            "label": modes,
            "family": [family(m, "fix") for m in modes],
            "order": [(2, 0, 2, (0, 4), -i) for i in range(9, 0, -1)],
        }
    )
    assert ordered_labels(configs) == modes
    assert emphasised(modes) == ["a9-e1", "a7-e3", "a5-e5", "a3-e7", "a1-e9"]
    styles = series_styles(configs)
    assert [styles[m]["color"] for m in emphasised(modes)] == PALETTE[:5]
    rows = [
        {"label": m, "order": o, "round": r, "mean": 90.0 - i + r / 10, "std": np.nan, "count": 1}
        for i, (m, o) in enumerate(zip(modes, configs["order"], strict=True))
        for r in (5, 10, 15, 20)
    ]
    fig, ax = plt.subplots()
    draw_family(ax, pd.DataFrame(rows), styles, "round")
    marked = [line.get_label() for line in ax.get_lines() if line.get_marker() not in (None, "None", "", " ")]
    grey = [line for line in ax.get_lines() if line.get_marker() in (None, "None", "", " ")]
    assert marked == emphasised(modes) and len(grey) == 4
    assert [line.get_label() for line in grey].count(CONTEXT_LABEL) == 1
    assert all(line.get_color() == "0.72" for line in grey)
    assert list(grey[0].get_ydata()) == pytest.approx([90.0 - 1 + r / 10 for r in (5, 10, 15, 20)])  # a8-e2
    plt.close(fig)

"""The report layer against hand-computed numbers from fake run folders (no training involved)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from heterofl.config import ExperimentConfig
from heterofl.rates import LETTER_OF_RATE, ModelMode, letters_up_to
from heterofl.report import build_report, collect_runs, missing_runs
from heterofl.results import run_dir

CONV_PARAMS = {"a": 1_556_874, "b": 391_370, "c": 98_922, "d": 25_274, "e": 6_594}  # spec section 8
SEEDS = (0, 1)
# control -> accuracy of its global model at seed 0; seed 1 adds 0.7, each smaller letter loses 2.
BASES = {
    "1_100_0.1_iid_fix_a1_bn_1_1": 95.0,
    "1_100_0.1_iid_fix_e1_bn_1_1": 90.0,
    "1_100_0.1_iid_dynamic_a1-e1_bn_1_1": 94.0,
    "1_100_0.1_iid_fix_a5-e5_bn_1_1": 80.0,  # equal fix mix: Table 1 must prefer the dynamic a1-e1
    "1_100_0.1_iid_fix_a8-e2_bn_1_1": 93.0,
    "1_100_0.1_iid_fix_a2-e8_bn_1_1": 91.0,
    "1_100_0.1_iid_fix_a1_in_1_1": 85.0,  # ablation variant of a1: must not leak into Table 1
    "1_100_0.1_non-iid-2_fix_a1_bn_1_1": 60.0,
    "1_100_0.1_non-iid-2_dynamic_a1-e1_bn_1_1": 62.0,
}
OFFSET = {"final": 0.0, "best": 1.0, "mean_last_k": 0.25}


def accuracy(control: str, seed: int, letter: str, local: bool = False) -> float:
    """The fake global model's accuracy at ``letter``; local accuracy is 3 points higher (all within 0..100)."""
    return BASES[control] + 0.7 * seed - 2.0 * "abcde".index(letter) + (3.0 if local else 0.0)


def write_run(root: Path, control: str, seed: int) -> Path:
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": control, "seed": seed, "rounds": 3})
    folder = run_dir(root, config.dataset, config.model, control, seed)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    rows, history = [], {"round": [1, 2, 3], "lr": [0.01] * 3, "clients": [10] * 3, "train_loss": [1.0] * 3}
    for letter in letters_up_to(ModelMode.parse(config.control.model_mode).global_rate):
        for metric, local in (("Global-Accuracy", False), ("Local-Accuracy", True)):
            v = accuracy(control, seed, letter, local)
            rows.append({"letter": letter, "rate": {v: k for k, v in LETTER_OF_RATE.items()}[letter], "metric": metric})
            rows[-1].update({name: v + off for name, off in OFFSET.items()} | {"evaluations": 3})
            history[f"{letter}_{metric}"] = [v - 2.0, v - 1.0, v]
    pd.DataFrame(rows).to_csv(folder / "eval.csv", index=False)
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    return folder


def expected(control: str, metric: str = "mean_last_k", letter: str = "a", local: bool = False) -> tuple[float, float]:
    values = [accuracy(control, s, letter, local) + OFFSET[metric] for s in SEEDS]
    return statistics.mean(values), statistics.stdev(values)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path, list[Path], Path]:
    root = tmp_path_factory.mktemp("runs")
    for control in BASES:
        for seed in SEEDS:
            write_run(root, control, seed)
    unfinished = run_dir(root, "MNIST5k", "conv", "1_100_0.1_iid_fix_b1_bn_1_1", 0)
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("dataset: MNIST5k\ncontrol: 1_100_0.1_iid_fix_b1_bn_1_1\n")
    absent = run_dir(root, "MNIST5k", "conv", "1_100_0.1_iid_fix_c1_bn_1_1", 0)
    expected_runs = [run_dir(root, "MNIST5k", "conv", c, s) for c in BASES for s in SEEDS] + [unfinished, absent]
    out = tmp_path_factory.mktemp("report")
    written = build_report(root, out, expected=expected_runs)
    return root, out, written, unfinished


def test_collect_skips_unfinished_and_keeps_long_format(report) -> None:
    root, _, _, _ = report
    runs, history = collect_runs(root)
    assert set(runs["control"]) == set(BASES)  # b1 has no eval.csv
    assert len(runs) == sum(2 * len(letters_up_to(ModelMode.parse(c.split("_")[5]).global_rate)) for c in BASES) * 2
    row = runs[(runs["control"] == "1_100_0.1_iid_fix_a1_bn_1_1") & (runs["seed"] == 1) & (runs["letter"] == "c")]
    row = row[row["metric"] == "Global-Accuracy"].iloc[0]
    assert row["final"] == pytest.approx(95.0 + 0.7 - 4.0)
    assert (row["global_letter"], row["data_split_mode"], row["norm"]) == ("a", "iid", "bn")
    curve = history[(history["control"] == "1_100_0.1_iid_fix_e1_bn_1_1") & (history["seed"] == 0)]
    curve = curve[curve["metric"] == "Global-Accuracy"]
    assert curve.sort_values("round")["value"].tolist() == [80.0, 81.0, 82.0]  # e is 4 letters below a: 90 - 8


def test_missing_runs_lists_unfinished_and_absent(report, tmp_path) -> None:
    root, out, _, unfinished = report
    listed = (out / "summary" / "missing_runs.txt").read_text().splitlines()
    assert listed == [str(unfinished), str(run_dir(root, "MNIST5k", "conv", "1_100_0.1_iid_fix_c1_bn_1_1", 0))]
    done = run_dir(root, "MNIST5k", "conv", "1_100_0.1_iid_fix_a1_bn_1_1", 0)
    assert missing_runs([done, tmp_path / "nope"]) == [str(tmp_path / "nope")]


def test_combination_table_matches_hand_computation(report) -> None:
    _, out, _, _ = report
    raw = pd.read_csv(out / "tables" / "combination_MNIST5k_raw.csv")
    assert raw["label"].tolist() == ["a", "a-e", "e"]  # global letter, then decreasing ratio
    a, ae, e = (raw.iloc[i] for i in range(3))
    assert a["params"] == CONV_PARAMS["a"] and e["params"] == CONV_PARAMS["e"]
    assert round(ae["ratio"], 3) == 0.502
    assert ae["params"] == pytest.approx((CONV_PARAMS["a"] + CONV_PARAMS["e"]) / 2)
    assert ae["model_split_mode"] == "dynamic"
    mean, std = expected("1_100_0.1_iid_dynamic_a1-e1_bn_1_1")
    assert (ae["iid_mean"], ae["iid_std"]) == (pytest.approx(mean), pytest.approx(std))
    mean, std = expected("1_100_0.1_iid_fix_a1_bn_1_1")  # the bn run, not the IN ablation variant
    assert a["iid_mean"] == pytest.approx(mean) and a["iid_mean"] == pytest.approx(95.6)
    local, _ = expected("1_100_0.1_non-iid-2_fix_a1_bn_1_1", local=True)
    assert a["noniid_local_mean"] == pytest.approx(local)
    assert pd.isna(e["noniid_global_mean"])  # no non-IID e1 run

    table = pd.read_csv(out / "tables" / "combination_MNIST5k.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == [
        "Model",
        "Ratio",
        "Params",
        "FLOPs",
        "Space (MB)",
        "IID Accuracy",
        "Non-IID Local (non-iid-2)",
        "Non-IID Global (non-iid-2)",
    ]
    first = table.iloc[0]
    assert (first["Ratio"], first["Params"], first["FLOPs"], first["Space (MB)"]) == ("1.00", "1.6 M", "80.5 M", "5.94")
    assert table.iloc[1]["Ratio"] == "0.50"
    assert table.iloc[2]["Params"] == "7 K"
    mean, std = expected("1_100_0.1_iid_dynamic_a1-e1_bn_1_1")
    assert table.iloc[1]["IID Accuracy"] == f"{mean:.2f} ± {std:.2f}" == "94.60 ± 0.49"
    assert "$\\pm$" in (out / "tables" / "combination_MNIST5k.tex").read_text()
    markdown = (out / "tables" / "combination_MNIST5k.md").read_text()
    assert "| a-e     | 0.50    | 782 K" in markdown and "non-iid-2" in markdown


def test_interpolation_rows_are_proportion_weighted(report) -> None:
    _, out, _, _ = report
    raw = pd.read_csv(out / "tables" / "interpolation_MNIST5k_iid_raw.csv")
    pair = raw[raw["pair"] == "a-e"]
    assert pair["model_mode"].tolist() == ["a1", "a8-e2", "a5-e5", "a2-e8", "e1"]
    assert pair["share_x"].tolist() == [1.0, 0.8, 0.5, 0.2, 0.0]
    row = pair[pair["model_mode"] == "a2-e8"].iloc[0]
    assert row["params"] == pytest.approx((2 * 1_556_874 + 8 * 6_594) / 10)
    mean, std = expected("1_100_0.1_iid_fix_a2-e8_bn_1_1")
    assert (row["global_mean"], row["global_std"]) == (pytest.approx(mean), pytest.approx(std))
    bottom = pair[pair["model_mode"] == "e1"].iloc[0]  # Y endpoint: e1's global model is e
    assert bottom["global_mean"] == pytest.approx(expected("1_100_0.1_iid_fix_e1_bn_1_1", letter="e")[0])
    assert not (Path(out) / "tables" / "interpolation_MNIST5k_non-iid-2.csv").exists()


def test_ablation_and_submodel_tables(report) -> None:
    _, out, _, _ = report
    ablation = pd.read_csv(out / "tables" / "ablation_MNIST5k_iid_raw.csv")
    assert ablation[["model_mode", "norm"]].values.tolist() == [["a1", "in"], ["a1", "bn"]]
    assert ablation.iloc[0]["global_mean"] == pytest.approx(expected("1_100_0.1_iid_fix_a1_in_1_1")[0])
    assert not (out / "tables" / "ablation_MNIST5k_non-iid-2.csv").exists()

    sub = pd.read_csv(out / "tables" / "submodels_MNIST5k_iid_raw.csv")
    row = sub[sub["control"] == "1_100_0.1_iid_dynamic_a1-e1_bn_1_1"].iloc[0]
    for letter in "abcde":
        assert row[letter] == pytest.approx(expected("1_100_0.1_iid_dynamic_a1-e1_bn_1_1", letter=letter)[0])
    e_only = sub[sub["control"] == "1_100_0.1_iid_fix_e1_bn_1_1"].iloc[0]
    assert pd.isna(e_only["a"]) and e_only["e"] == pytest.approx(82.6)


def test_metric_choice_feeds_tables(report, tmp_path) -> None:
    root, _, _, _ = report
    build_report(root, tmp_path, metric="best")
    raw = pd.read_csv(tmp_path / "tables" / "combination_MNIST5k_raw.csv")
    assert raw.iloc[0]["iid_mean"] == pytest.approx(expected("1_100_0.1_iid_fix_a1_bn_1_1", metric="best")[0])
    assert (tmp_path / "summary" / "missing_runs.txt").read_text() == ""


def test_files_written_and_figures_non_empty(report) -> None:
    _, out, written, _ = report
    assert all(p.is_file() for p in written) and len(written) == len(set(written))
    for name in ("summary/runs.csv", "summary/history.csv", "tables/index.md", "summary/missing_runs.txt"):
        assert out / name in written
    stems = [
        "interpolation_MNIST5k",
        "pareto_MNIST5k",
        "learning_curves_MNIST5k_iid",
        "learning_curves_MNIST5k_non-iid-2",
        "rates_heatmap_MNIST5k_iid",
        "rates_heatmap_MNIST5k_non-iid-2",
    ]
    for stem in stems:
        pdf, png = out / "figures" / f"{stem}.pdf", out / "figures" / f"{stem}.png"
        assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:4] == b"\x89PNG"
        assert pdf in written and png in written
    assert not list((out / "figures").glob("interpolation_MNIST5k_*"))  # one interpolation figure per dataset
    assert not [p for p in (out / "figures").iterdir() if p.name.startswith(".")]  # no temp files left
    index = (out / "tables" / "index.md").read_text()
    assert "combination_MNIST5k" in index and "submodels_MNIST5k_non-iid-2" in index


def test_only_unequal_fix_mixes_build_tables_and_figures_without_table_1(tmp_path) -> None:
    """A new user's grid of unequal fix mixes alone (issue 24: it crashed with KeyError 'global_letter'): no
    Table 1 (those mixes are interpolation points), the per-rate table still holds every run's mean over seeds."""
    controls = ["1_100_0.1_iid_fix_a2-e8_bn_1_1", "1_100_0.1_iid_fix_a8-e2_bn_1_1"]
    for control in controls:
        for seed in SEEDS:
            write_run(tmp_path / "runs", control, seed)
    written = build_report(tmp_path / "runs", tmp_path / "out")
    assert not (tmp_path / "out" / "tables" / "combination_MNIST5k.csv").exists()
    sub = pd.read_csv(tmp_path / "out" / "tables" / "submodels_MNIST5k_iid_raw.csv")
    for control in controls:
        row = sub[sub["control"] == control].iloc[0]
        assert row["a"] == pytest.approx(expected(control)[0]) and row["n_seeds"] == 2
    assert any(p.suffix == ".png" for p in written)


def test_empty_runs_root_still_writes_fixed_files(tmp_path) -> None:
    written = build_report(tmp_path / "runs", tmp_path / "out", expected=[tmp_path / "runs" / "x"])
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in written)
    assert names == [
        "summary/clock.csv",
        "summary/cost.csv",
        "summary/history.csv",
        "summary/missing_runs.txt",
        "summary/runs.csv",
        "tables/index.md",
    ]
    assert (tmp_path / "out" / "summary" / "missing_runs.txt").read_text() == f"{tmp_path / 'runs' / 'x'}\n"


def test_diverged_run_is_collected_with_its_flag_and_left_out_of_every_mean(tmp_path) -> None:
    """Seed 2 of the a1 run is flagged DIVERGED (and would drag the mean to ~10 %): the summary keeps it with
    the flag, the tables average seeds 0 and 1 only and name the excluded run under every MNIST5k table."""
    root, control = tmp_path / "runs", "1_100_0.1_iid_fix_a1_bn_1_1"
    for seed in (0, 1):
        write_run(root, control, seed)
    write_run(root, "1_100_0.1_non-iid-2_fix_a1_bn_1_1", 0)
    bad = write_run(root, control, 2)
    evaluation = pd.read_csv(bad / "eval.csv")
    evaluation[["final", "best", "mean_last_k"]] = 10.0
    evaluation.to_csv(bad / "eval.csv", index=False)
    reason = "train loss 1e+05 in the last round is above 10 x min(first round 2.3, ln 10 = 2.3) and more"
    (bad / "DIVERGED").write_text(reason + "\n")

    runs, _ = collect_runs(root)
    assert runs.groupby("seed")["diverged"].all().to_dict() == {0: False, 1: False, 2: True}
    assert set(runs.loc[runs["seed"] == 2, "diverged_reason"]) == {reason}
    assert set(runs.loc[runs["seed"] != 2, "diverged_reason"]) == {""}

    out = tmp_path / "out"
    build_report(root, out)
    raw = pd.read_csv(out / "tables" / "combination_MNIST5k_raw.csv")
    mean, std = expected(control)
    assert raw.iloc[0]["iid_n"] == 2 and raw.iloc[0]["iid_mean"] == pytest.approx(mean)
    assert raw.iloc[0]["iid_std"] == pytest.approx(std)
    note = f"excluded: MNIST5k/conv/{control}/seed2 diverged ({reason})"
    for stem in ("combination_MNIST5k", "submodels_MNIST5k_iid"):
        assert note in (out / "tables" / f"{stem}.md").read_text()
        assert r"excluded: MNIST5k/conv/1\_100\_0.1\_iid" in (out / "tables" / f"{stem}.tex").read_text()
    assert note not in (out / "tables" / "submodels_MNIST5k_non-iid-2.md").read_text()  # another split
    assert f"- {note}" in (out / "tables" / "index.md").read_text()
    sub = pd.read_csv(out / "tables" / "submodels_MNIST5k_iid_raw.csv")
    assert sub.loc[sub["control"] == control, "n_seeds"].tolist() == [2]


def _summary_row(control: str, metric: str, best: float, dataset: str = "CIFAR10", blocks: str = "1-1-1-2") -> dict:
    """One runs.csv row (seed 0, the global model) of a fabricated summary whose numbers are known."""
    fed, users, frac, split, split_mode, mode, norm, scale, mask = control.split("_")
    letter = mode[0]
    model = {"CIFAR10": "resnet18", "WikiText2": "transformer"}.get(dataset, "conv")
    return {
        "dataset": dataset,
        "model": model,
        "run": control,
        "control": control,
        "method": "heterofl",
        "seed": 0,
        "fed": int(fed),
        "num_users": int(users),
        "frac": float(frac),
        "data_split_mode": split,
        "model_split_mode": split_mode,
        "model_mode": mode,
        "norm": norm,
        "scale": int(scale),
        "mask": int(mask),
        "global_letter": letter,
        "resnet_blocks": blocks,
        "letter": letter,
        "rate": {v: k for k, v in LETTER_OF_RATE.items()}[letter],  # collect writes the letter's rate
        "metric": metric,
        "final": best - 1.0,
        "best": best,
        "mean_last_k": best - 0.5,
    }


def test_paper_numbers_beside_ours_on_a_fabricated_summary(tmp_path) -> None:
    """CIFAR10 runs with the paper's control strings get the published value and ours - paper; Table 2 values in
    the ablation table; a run the paper does not report, and MNIST5k, get no column at all."""
    ga, la = "Global-Accuracy", "Local-Accuracy"
    rows = [
        _summary_row("1_100_0.1_iid_fix_a1_bn_1_1", ga, 90.00),  # Table 1: a, IID 91.19
        _summary_row("1_100_0.1_iid_dynamic_a1-e1_bn_1_1", ga, 91.00),  # Table 1: a-e, IID 90.29
        _summary_row("1_100_0.1_iid_fix_a5-e5_bn_1_1", ga, 85.00),  # interpolation point: not published
        _summary_row("1_100_0.1_iid_fix_e1_bn_1_1", ga, 80.00),  # Table 1: e, IID 77.09
        _summary_row("1_100_0.1_non-iid-2_fix_a1_bn_1_1", la, 93.00),  # Table 1: 92.38 / Table 2: 92.1
        _summary_row("1_100_0.1_non-iid-2_fix_a1_bn_1_1", ga, 50.00),  # Table 1: 56.88 / Table 2: 59.2
        _summary_row("1_100_0.1_non-iid-2_fix_a1_none_1_1", la, 90.00),  # Table 2: 91.7
        _summary_row("1_100_0.1_non-iid-2_fix_a1_none_1_1", ga, 60.00),  # Table 2: 58.5
        _summary_row("1_100_0.1_iid_fix_a1_bn_1_1", ga, 97.00, dataset="MNIST5k"),  # never the paper's MNIST
    ]
    runs_csv = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(runs_csv, index=False)
    from heterofl.report import write_tables

    write_tables(runs_csv, tmp_path / "tables", metric="best")
    table = pd.read_csv(tmp_path / "tables" / "combination_CIFAR10.csv", dtype=str, keep_default_na=False)
    assert list(table.columns)[5:] == [
        "IID Accuracy",
        "Paper IID",
        "Δ IID",
        "Non-IID Local (non-iid-2)",
        "Paper Local",
        "Δ Local",
        "Non-IID Global (non-iid-2)",
        "Paper Global",
        "Δ Global",
    ]
    by_model = table.set_index("Model")
    assert by_model.loc["a", ["Paper IID", "Δ IID"]].tolist() == ["91.19", "-1.19"]
    assert by_model.loc["a-e", ["Paper IID", "Δ IID"]].tolist() == ["90.29", "+0.71"]
    assert by_model.loc["e", ["Paper IID", "Δ IID"]].tolist() == ["77.09", "+2.91"]
    assert by_model.loc["a", ["Paper Local", "Δ Local", "Paper Global", "Δ Global"]].tolist() == [
        "92.38",
        "+0.62",
        "56.88",
        "-6.88",
    ]
    assert by_model.loc["a-e", ["Paper Local", "Δ Local"]].tolist() == ["-", "-"]  # no non-IID a-e run
    raw = pd.read_csv(tmp_path / "tables" / "combination_CIFAR10_raw.csv").set_index("label")
    assert raw.loc["a", "paper_iid"] == 91.19 and raw.loc["a", "paper_iid_source"] == "table1"
    assert raw.loc["a", "diff_noniid_global"] == pytest.approx(50.00 - 56.88)
    assert "arXiv:2010.01264" in (tmp_path / "tables" / "combination_CIFAR10.md").read_text()
    assert r"$\Delta$ IID" in (tmp_path / "tables" / "combination_CIFAR10.tex").read_text()

    interpolation = pd.read_csv(tmp_path / "tables" / "interpolation_CIFAR10_iid.csv", dtype=str, keep_default_na=False)
    pair = interpolation[interpolation["Pair"] == "a-e"].set_index("Model")
    assert pair["Paper Global"].tolist() == ["91.19", "-", "77.09"]  # a1, a5-e5, e1
    assert pair.loc["a5-e5", "Δ Global"] == "-" and pair.loc["a1", "Δ Global"] == "-1.19"

    ablation = pd.read_csv(tmp_path / "tables" / "ablation_CIFAR10_non-iid-2.csv", dtype=str, keep_default_na=False)
    by_norm = ablation.set_index("Norm")
    assert by_norm.loc["none", ["Paper Local", "Δ Local", "Paper Global", "Δ Global"]].tolist() == [
        "91.7",
        "-1.70",
        "58.5",
        "+1.50",
    ]
    assert by_norm.loc["bn", ["Paper Local", "Paper Global"]].tolist() == ["92.1", "59.2"]  # Table 2's own a run

    mnist = pd.read_csv(tmp_path / "tables" / "combination_MNIST5k.csv")
    assert not [c for c in mnist.columns if "Paper" in c or "Δ" in c]
    assert not [c for c in pd.read_csv(tmp_path / "tables" / "combination_MNIST5k_raw.csv").columns if "paper" in c]
    assert "Paper" not in (tmp_path / "tables" / "combination_MNIST5k.md").read_text()


def test_published_matches_only_the_papers_configuration() -> None:
    from heterofl.report.paper_numbers import published

    def config(control: str, **overrides) -> dict:
        return _summary_row(control, "Global-Accuracy", 0.0) | overrides

    assert published(config("1_100_0.1_iid_dynamic_a5-e5_bn_1_1"), "Global-Accuracy").value == 90.29  # a1-e1
    assert published(config("1_100_0.1_iid_dynamic_a1-b1_bn_1_1"), "Global-Accuracy") is None  # not in Table 1
    assert published(config("1_100_0.1_iid_dynamic_a1_bn_0_1"), "Global-Accuracy").value == 91.19  # one rate
    for different in (
        config("1_100_0.1_iid_fix_a1-e1_bn_1_1"),  # fix, where the paper's a-e is dynamic
        config("1_20_0.1_iid_fix_a1_bn_1_1"),  # 20 clients
        config("1_100_0.25_iid_fix_a1_bn_1_1"),  # a quarter of them per round
        config("1_100_0.1_iid_fix_a1_bn_1_1", resnet_blocks="2-2-2-2"),  # the later ResNet18
        config("1_100_0.1_iid_fix_a1_gn_1_1"),  # another norm
        config("1_100_0.1_iid_fix_a1_bn_1_1", dataset="MNIST5k", model="conv"),
    ):
        assert published(different, "Global-Accuracy") is None, different["control"]
    mnist = config("1_100_0.1_iid_fix_a1-e9_bn_1_1", dataset="MNIST", model="conv")
    hit = published(mnist, "Global-Accuracy")
    assert (hit.value, hit.source, hit.text()) == (99.03, "figure", "≈99.03")
    wikitext = config("1_100_0.1_iid_fix_b1_bn_1_1", dataset="WikiText2", model="transformer")
    assert published(wikitext, "Global-Perplexity").value == 3.46
    assert published(wikitext, "Global-Accuracy") is None


def test_index_lists_every_table_and_figure_written(report) -> None:
    """`heterofl report` writes the figures first, so tables/index.md links each one (and each table, also as
    HTML for `snakemake --report`)."""
    _, out, written, _ = report
    index = (out / "tables" / "index.md").read_text()
    figures = [p for p in written if p.suffix in (".pdf", ".png")]
    assert figures and "None." not in index
    for path in figures:
        assert f"](../figures/{path.name})" in index and f"`{path.stem}`" in index
    tables = sorted((out / "tables").glob("*.html"))
    assert tables and all(p in written for p in tables)
    for path in tables:
        assert f"`{path.stem}`" in index and "<table" in path.read_text()


def test_report_finds_runs_of_the_cli_layout_or_names_the_layout_it_needs(tmp_path, capsys) -> None:
    """``heterofl train --out runs/x`` puts a run straight under the runs root (issue 24: the report said
    "No finished runs." and exited 0): it is reported; an unevaluated or empty root is refused in one line."""
    from heterofl.cli import main

    control = "1_100_0.1_iid_fix_a1_bn_1_1"
    (tmp_path / "runs").mkdir()
    for seed in SEEDS:
        write_run(tmp_path / "made", control, seed).rename(tmp_path / "runs" / f"x{seed}")
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    raw = pd.read_csv(tmp_path / "out" / "tables" / "combination_MNIST5k_raw.csv")
    assert raw["iid_mean"].tolist() == [pytest.approx(expected(control)[0])] and raw["iid_n"].tolist() == [2]

    (tmp_path / "runs" / "x0" / "eval.csv").rename(tmp_path / "x0-eval.csv")
    (tmp_path / "runs" / "x1" / "eval.csv").unlink()
    capsys.readouterr()
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out2")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no eval.csv" in error and "heterofl evaluate --run" in error
    (tmp_path / "empty").mkdir()
    assert main(["report", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "out3")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds no run folder" in error and "heterofl train --out" in error
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()

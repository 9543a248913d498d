"""The clock's report: summary/clock.csv, the clock table (time to target, accuracy within budget, lost updates,
per-class shares, paired differences) and the time-curves figure, on fabricated runs with hand-set numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from heterofl.config import ExperimentConfig
from heterofl.identity import run_name
from heterofl.report import write_figures, write_summary, write_tables
from heterofl.report.clock import REFERENCE, setup_label
from heterofl.results import run_dir

MINUTE = 60.0


def write_clock_run(root: Path, settings: dict, seed: int, accuracy: list[float], seconds: list[float],
                    dropped: list[int]) -> Path:  # fmt: skip
    """A finished fake run on the clock: 4 sampled clients per round (2 'slow', 2 'fast'), ``dropped`` of the slow
    ones lost, 10 MACs trained per kept client and 10 wasted per lost one."""
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "seed": seed, "rounds": len(accuracy), **settings})
    folder = run_dir(root, config.dataset, config.model, run_name(config), seed)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    letter = config.mode.letters[0]
    n = len(accuracy)
    cumulative = pd.Series(seconds).cumsum().tolist()
    history = {
        "round": list(range(1, n + 1)),
        "train_loss": [1.0] * n,
        "client_train_macs": [10 * (4 - d) for d in dropped],
        "sim_round_seconds": seconds,
        "sim_seconds": cumulative,
        "clients_sampled": [4] * n,
        "clients_offline": [0] * n,
        "clients_dropped": dropped,
        "wasted_client_train_macs": [10 * d for d in dropped],
        "dropped_slow": dropped,
        "dropped_fast": [0] * n,
        "sampled_slow": [2] * n,
        "sampled_fast": [2] * n,
        "kept_slow": [2 - d for d in dropped],
        "kept_fast": [2] * n,
        "sampled_samples_slow": [100 + 300] * n,  # a slow client of 100 samples and one of 300: the large one is lost
        "kept_samples_slow": [100 if d == 1 else 400 - 400 * d // 2 for d in dropped],
        "sampled_samples_fast": [2 * 250] * n,
        "kept_samples_fast": [2 * 250] * n,
        f"{letter}_Global-Accuracy": accuracy,
    }
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    pd.DataFrame(
        [{"letter": letter, "rate": 1.0, "metric": "Global-Accuracy", "final": accuracy[-1], "best": max(accuracy),
          "mean_last_k": accuracy[-1]}]
    ).to_csv(folder / "eval.csv", index=False)  # fmt: skip
    return folder


CONTROL_CAP = "1_20_0.25_iid_dynamic_a1-b1-c1-d1-e1_bn_1_1"
CAPABILITY = {"control": CONTROL_CAP, "fleet": "two", "deadline": 60, "capability_widths": True}
DEADLINE = {"control": "1_20_0.25_iid_fix_a1_bn_1_1", "fleet": "two", "deadline": 60}


def test_setup_labels_name_the_method_and_the_policy():
    assert setup_label("1_20_0.25_iid_fix_a1_bn_1_1+fleet-x", "heterofl", "a1") == "FedAvg, full model, wait for all"
    assert setup_label("c+fleet-x+deadline60s", "heterofl", "a1") == "FedAvg, full model, deadline 60 s"
    assert setup_label("c+fleet-x", "heterofl", "e1") == "FedAvg, rate e, wait for all"
    assert setup_label("c+fleet-x+deadline60s+capability", "heterofl", "a1-b1-c1-d1-e1") == REFERENCE
    assert setup_label("c+fd+fleet-x+deadline60s+capability", "fd", "a1-e1") == "Federated Dropout, capability widths"
    assert setup_label("c+fleet-x+oc1.3", "heterofl", "a1") == "FedAvg, full model, wait for all, overcommit 1.3"


def test_the_clock_table_times_the_target_and_pairs_by_seed(tmp_path):
    root = tmp_path / "runs"
    # reference reaches 90 % at round 2 (2 minutes) in both seeds; the deadline run at round 3 (seed 0: 3 min,
    # seed 1: 4.5 min) and loses 1 of 4 updates in every round
    write_clock_run(root, CAPABILITY, 0, [80.0, 91.0, 95.0], [MINUTE] * 3, [0, 0, 0])
    write_clock_run(root, CAPABILITY, 1, [85.0, 92.0, 96.0], [MINUTE] * 3, [0, 0, 0])
    write_clock_run(root, DEADLINE, 0, [70.0, 85.0, 90.0], [MINUTE] * 3, [1, 1, 1])
    write_clock_run(root, DEADLINE, 1, [70.0, 80.0, 92.0], [1.5 * MINUTE] * 3, [1, 1, 1])
    write_summary(tmp_path / "summary", root)
    clock = pd.read_csv(tmp_path / "summary" / "clock.csv")
    assert len(clock) == 4 * 3 * 2  # runs x rounds x device classes
    written = write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    assert tmp_path / "tables" / "clock_MNIST5k_iid.csv" in written
    table = pd.read_csv(tmp_path / "tables" / "clock_MNIST5k_iid.csv").set_index("Setup")
    deadline = table.loc["FedAvg, full model, deadline 60 s"]
    assert deadline["Time to 90 % (min)"] == "3.8 ± 1.1 (2/2)"  # 3 and 4.5 minutes
    assert deadline["Updates lost (%)"] == "25 ± 0" and deadline["Data kept per class (%)"] == "fast 100, slow 25"
    assert deadline["Compute wasted (%)"] == "25 ± 0"  # 10 of 40 MACs per round
    assert deadline["Δ time to 90 %"].startswith("+1.8 [")  # (1 + 2.5) / 2 minutes later
    assert deadline["Time to 95 % (min)"] == "- (0/2)" and reference_time_to_95(table) == "3.0 ± 0.0 (2/2)"
    assert deadline["Run time (min)"] == "3.8 ± 1.1"
    reference = table.loc[REFERENCE]
    assert reference["Time to 90 % (min)"] == "2.0 ± 0.0 (2/2)" and reference["Δ time to 90 %"] == "+0.0 [+0.0, +0.0]"


def reference_time_to_95(table: pd.DataFrame) -> str:
    return table.loc[REFERENCE, "Time to 95 % (min)"]


def test_a_run_that_never_reaches_the_target_is_counted_not_averaged(tmp_path):
    root = tmp_path / "runs"
    write_clock_run(root, CAPABILITY, 0, [80.0, 91.0], [MINUTE] * 2, [0, 0])
    write_clock_run(root, DEADLINE, 0, [70.0, 85.0], [MINUTE] * 2, [2, 2])
    write_summary(tmp_path / "summary", root)
    write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    table = pd.read_csv(tmp_path / "tables" / "clock_MNIST5k_iid.csv").set_index("Setup")
    assert table.loc["FedAvg, full model, deadline 60 s", "Time to 90 % (min)"] == "- (0/1)"
    assert table.loc["FedAvg, full model, deadline 60 s", "Data kept per class (%)"] == "fast 100, slow 0"


@pytest.mark.filterwarnings("error")
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # another test's leak, reported wherever GC runs
def test_the_time_curves_figure_is_drawn_for_runs_on_the_clock(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        write_clock_run(root, CAPABILITY, seed, [80.0, 91.0, 95.0], [MINUTE] * 3, [0, 0, 0])
        write_clock_run(root, DEADLINE, seed, [70.0, 85.0, 90.0], [MINUTE] * 3, [1, 1, 1])
    write_summary(tmp_path / "summary", root)
    summary = tmp_path / "summary"
    written = write_figures(summary / "runs.csv", summary / "history.csv", tmp_path / "figures")
    assert {p.name for p in written} >= {"time_curves_MNIST5k_iid.png", "time_curves_MNIST5k_iid.pdf"}


def test_runs_without_a_fleet_write_an_empty_clock_summary_and_no_clock_table(tmp_path):
    root = tmp_path / "runs"
    config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": "1_20_0.25_iid_fix_a1_bn_1_1", "rounds": 2})
    folder = run_dir(root, config.dataset, config.model, run_name(config), 0)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    pd.DataFrame({"round": [1, 2], "a_Global-Accuracy": [50.0, 60.0]}).to_csv(folder / "history.csv", index=False)
    pd.DataFrame([{"letter": "a", "rate": 1.0, "metric": "Global-Accuracy", "final": 60.0, "best": 60.0,
                   "mean_last_k": 60.0}]).to_csv(folder / "eval.csv", index=False)  # fmt: skip
    write_summary(tmp_path / "summary", root)
    assert pd.read_csv(tmp_path / "summary" / "clock.csv").empty
    written = write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    assert not [p for p in written if p.name.startswith("clock_")]

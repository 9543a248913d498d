"""Communication and compute accounting: a round against a hand count, its summary, and the cost table.

The expected numbers come from the model definitions (HeteroFL, https://arxiv.org/abs/2010.01264, MNIST CNN:
four 3x3 convs with padding 1 of 64, 128, 256, 512 channels at rate 1, each followed by BN and, except the
last, a 2x2 max pool; global average pool; a linear layer to 10 classes), with conv and linear MAC formulas.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from synthetic import image_dataset

from heterofl.config import ExperimentConfig
from heterofl.csv_checks import read_run_history
from heterofl.data import Dataset, make_partition
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.rates import LETTER_OF_RATE
from heterofl.report import collect_runs, write_summary, write_tables
from heterofl.report.collect import collect_summary
from heterofl.report.cost import MB, cost_table, run_costs
from heterofl.reproduce import compare_runs
from heterofl.results import ACCOUNTING_COLUMNS, run_dir

CONV_HIDDEN = (64, 128, 256, 512)
RATES = {"a": 1.0, "b": 0.5, "c": 0.25, "d": 0.125, "e": 0.0625}


def conv_widths(rate: float) -> list[int]:
    return [math.ceil(rate * h) for h in CONV_HIDDEN]


def conv_params(rate: float) -> int:
    """Conv weight 3x3xCinxCout + bias Cout + BN gamma/beta 2xCout per block; linear W x 10 + 10."""
    channels = [1, *conv_widths(rate)]
    blocks = sum(9 * cin * cout + cout + 2 * cout for cin, cout in zip(channels, channels[1:], strict=False))
    return blocks + channels[-1] * 10 + 10


def conv_macs(rate: float) -> int:
    """3x3 conv MACs = 9 x Cin x Cout x H x W at 28, 14, 7 and 3 pixels (pools floor 7 to 3); linear W x 10."""
    channels = [1, *conv_widths(rate)]
    sides = (28, 14, 7, 3)
    convs = sum(9 * cin * cout * s * s for cin, cout, s in zip(channels[:-1], channels[1:], sides, strict=True))
    return convs + channels[-1] * 10


def test_hand_formulas_match_the_published_counts():
    """The hand formulas above, checked against the parameter counts the reference's summary.py gives."""
    assert conv_params(1.0) == 1_556_874 and conv_params(0.0625) == 6_594
    assert conv_macs(1.0) == 39_974_912 and conv_macs(0.0625) == 182_912


def count_samples(federation: Federation, rates: list[float]) -> dict[float, list[int]]:
    """Batch sizes every training model of ``rates`` really ran forward on (forward hooks)."""
    seen: dict[float, list[int]] = {rate: [] for rate in rates}
    for rate in rates:
        model = federation.train_model(rate)
        model.register_forward_hook(lambda m, inputs, out, r=rate: seen[r].append(int(inputs[0].shape[0])))
    return seen


def test_two_client_conv_round_counts_bytes_and_macs_by_hand():
    """Two clients at rates a and e, 2 local epochs of batch 5 (partial last batches), all rates evaluated."""
    n_train, n_test = 24, 11
    dataset = image_dataset(n_train=n_train, n_test=n_test, cyclic_labels=True)
    partition = make_partition(dataset, "iid", 2, seed=0)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": "1_2_1_iid_fix_a1-e1_bn_1_1",
            "rounds": 2,
            "eval_every": 2,
            "local_epochs": 2,
            "batch_size_train": 5,
            "engine": "sequential",
            "eval_rates": "all",
        }
    )
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    assert federation.fixed_rates == [1.0, 0.0625]  # client 0 holds rate a, client 1 rate e
    n_a, n_e = (len(ix) for ix in partition.train_indices)
    seen = count_samples(federation, [1.0, 0.0625])
    state = federation.run_round(federation.initial_state())
    assert sum(seen[1.0]) == 2 * n_a and sum(seen[0.0625]) == 2 * n_e  # every sample, every epoch
    assert any(size % 5 for size in seen[1.0] + seen[0.0625])  # a partial batch was trained, not dropped

    row = state.history[-1]
    expected_bytes = 4 * (1_556_874 + 6_594)
    assert row["bytes_to_clients"] == expected_bytes == 6_253_872
    assert row["bytes_from_clients"] == expected_bytes
    assert row["client_train_macs"] == 3 * (2 * n_a * 39_974_912 + 2 * n_e * 182_912)
    assert row["server_static_bn_macs"] == 0 and row["server_eval_macs"] == 0  # round 1 does not evaluate

    state = federation.run_round(state)
    row = state.history[-1]
    all_rates = sum(conv_macs(rate) for rate in RATES.values())
    assert row["server_static_bn_macs"] == n_train * all_rates
    assert row["server_eval_macs"] == n_test * all_rates
    assert row["client_train_macs"] == 3 * (2 * n_a * 39_974_912 + 2 * n_e * 182_912)
    columns = list(pd.DataFrame(state.history).columns)
    assert columns[columns.index("seconds_train") + 1 : columns.index("seconds_train") + 6] == list(ACCOUNTING_COLUMNS)


def test_fjord_counts_every_batch_at_the_rate_it_trained():
    dataset = image_dataset(n_train=60, n_test=10, cyclic_labels=True)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "MNIST5k",
            "control": "1_2_1_iid_fix_c1-e1_bn_1_1",
            "method": "fjord",
            "rounds": 1,
            "local_epochs": 2,
            "batch_size_train": 4,
            "engine": "sequential",
            "eval_rates": "global",
        }
    )
    federation = Federation(config, dataset, make_partition(dataset, "iid", 2, seed=0), torch.device("cpu"))
    rates = [0.25, 0.125, 0.0625]
    seen = count_samples(federation, rates)
    row = federation.run_round(federation.initial_state()).history[-1]
    assert len(seen[0.125]) > 0  # the rate-c client trained some batches at the nested rate d
    assert row["client_train_macs"] == 3 * sum(sum(seen[r]) * conv_macs(r) for r in rates)
    assert row["bytes_to_clients"] == 4 * (conv_params(0.25) + conv_params(0.0625))  # whole p_max submodels


def transformer_macs(rate: float, length: int, tokens: int) -> int:
    """4 layers of q/k/v/o (4 L E^2), QK^T and AV (2 L^2 E), FFN (2 L E H); decoder E->E and E->N."""
    e, h = math.ceil(256 * rate), math.ceil(512 * rate)
    return (
        4 * (4 * length * e * e + 2 * length * length * e + 2 * length * e * h) + length * e * e + length * e * tokens
    )


def test_language_round_counts_every_window_at_its_length():
    vocab = 50
    g = torch.Generator().manual_seed(0)
    train, test = torch.randint(0, vocab, (6, 150), generator=g), torch.randint(0, vocab, (2, 70), generator=g)
    dataset = Dataset("WikiText2", train, train, test, test, vocab, False)
    config = ExperimentConfig.from_dict(
        {
            "dataset": "WikiText2",
            "control": "1_2_1_iid_fix_a1-e1_bn_1_1",
            "rounds": 1,
            "local_epochs": 1,
            "engine": "sequential",
            "eval_rates": "global",
        }
    )
    partition = make_partition(dataset, "iid", 2, seed=0)
    federation = Federation(config, dataset, partition, torch.device("cpu"))
    row = federation.run_round(federation.initial_state()).history[-1]
    rows_a, rows_e = (len(ix) for ix in partition.train_indices)

    def per_pass(rate: float, lengths: tuple[int, ...]) -> int:
        return sum(transformer_macs(rate, n, vocab) for n in lengths)

    train_windows, test_windows = (64, 64, 22), (64, 6)
    assert row["client_train_macs"] == 3 * (
        rows_a * per_pass(1.0, train_windows) + rows_e * per_pass(1 / 16, train_windows)
    )
    assert row["server_eval_macs"] == 2 * per_pass(1.0, test_windows)
    assert row["server_static_bn_macs"] == 0  # no BatchNorm in the transformer
    embed = (vocab + 1) * 256 + 64 * 256 + 2 * 256  # token (with [MASK]) and position embeddings, their norm
    layer = 4 * (256 * 256 + 256) + 2 * 256 * 512 + 512 + 256 + 4 * 256
    decoder = 256 * 256 + 256 + 2 * 256 + 256 * vocab + vocab
    small = (vocab + 1) * 16 + 64 * 16 + 2 * 16 + 4 * (4 * (16 * 16 + 16) + 2 * 16 * 32 + 32 + 16 + 4 * 16)
    small += 16 * 16 + 16 + 2 * 16 + 16 * vocab + vocab
    assert row["bytes_to_clients"] == 4 * (embed + 4 * layer + decoder + small)


# ----------------------------------------------------------------------------------------------- the summary


def write_run(root: Path, control: str, seed: int, accuracy: list[float], cost: dict | None, **settings) -> Path:
    """A finished fake run: config, eval.csv, and history.csv with (or, ``cost`` None, without) accounting."""
    config = ExperimentConfig.from_dict(
        {"dataset": "MNIST5k", "control": control, "seed": seed, "rounds": len(accuracy), **settings}
    )
    folder = run_dir(root, config.dataset, config.model, control, seed)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    letter = LETTER_OF_RATE[config.mode.global_rate]
    rounds = list(range(1, len(accuracy) + 1))
    history = {"round": rounds, "lr": [0.01] * len(rounds), "train_loss": [1.0] * len(rounds)}
    history |= {column: values for column, values in (cost or {}).items()}
    history[f"{letter}_Global-Accuracy"] = accuracy
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    values = [v for v in accuracy if not pd.isna(v)]
    pd.DataFrame(
        [{"letter": letter, "rate": 1.0, "metric": "Global-Accuracy", "final": values[-1], "best": max(values),
          "mean_last_k": values[-1]}]
    ).to_csv(folder / "eval.csv", index=False)  # fmt: skip
    return folder


MIB = 2**20
COST = {  # per round: 1 MiB each way, 1 GMAC of client training, 2 GMAC of server work where it evaluates
    "bytes_to_clients": [MIB] * 4,
    "bytes_from_clients": [MIB] * 4,
    "client_train_macs": [10**9] * 4,
    "server_static_bn_macs": [10**9] * 4,
    "server_eval_macs": [10**9] * 4,
}


def test_old_history_without_the_columns_is_still_collected(tmp_path):
    root = tmp_path / "runs"
    old = write_run(root, "1_100_0.1_iid_fix_a1_bn_1_1", 0, [50.0, 80.0, 90.0, 95.0], None)
    read_run_history(old / "history.csv")
    runs, history = collect_runs(root)
    assert len(runs) == 1 and runs["total_bytes_to_clients"].isna().all()
    assert history["value"].tolist() == [50.0, 80.0, 90.0, 95.0]
    written = write_summary(tmp_path / "summary", root)
    assert tmp_path / "summary" / "cost.csv" in written
    cost = pd.read_csv(tmp_path / "summary" / "cost.csv")
    assert cost.empty and list(cost.columns[-6:]) == ["round", *ACCOUNTING_COLUMNS]
    summary = pd.read_csv(tmp_path / "summary" / "runs.csv")
    assert summary[["total_bytes_to_clients", "total_server_macs"]].isna().all().all()
    tables = write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    assert not [p for p in tables if p.name.startswith("cost_")]  # no accounting, no cost table


def test_summary_writes_cost_rows_and_run_totals(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "1_100_0.1_iid_fix_a1_bn_1_1", 0, [50.0, 80.0, 90.0, 95.0], COST)
    # resumed across the change: its first two rounds were trained before the accounting existed
    partial = {k: [float("nan"), float("nan"), *v[2:]] for k, v in COST.items()}
    write_run(root, "1_100_0.1_iid_fix_a1_bn_1_1", 1, [50.0, 80.0, 90.0, 95.0], partial)
    runs, _, cost = collect_summary(root)
    assert len(cost) == 4 + 2 and cost.loc[cost["seed"] == 1, "round"].tolist() == [3, 4]
    totals = runs.set_index("seed")
    assert totals.at[0, "total_bytes_to_clients"] == 4 * MIB == totals.at[0, "total_bytes_from_clients"]
    assert totals.at[0, "total_client_train_macs"] == 4 * 10**9 and totals.at[0, "total_server_macs"] == 8 * 10**9
    assert pd.isna(totals.at[1, "total_bytes_to_clients"])  # rounds 1-2 unrecorded: no misleading sum

    write_summary(tmp_path / "summary", root)
    assert len(pd.read_csv(tmp_path / "summary" / "cost.csv")) == 6
    write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    raw = pd.read_csv(tmp_path / "tables" / "cost_MNIST5k_iid_raw.csv")
    assert len(raw) == 1 and raw.at[0, "n"] == 1  # the partial seed 1 does not enter the table
    assert (raw.at[0, "round_90"], raw.at[0, "mb_90"], raw.at[0, "client_macs_90"]) == (3, 6.0, 3e9)
    assert "cost_MNIST5k_iid" in (tmp_path / "tables" / "index.md").read_text()


def test_a_partly_empty_accounting_row_is_refused(tmp_path):
    bad = {k: list(v) for k, v in COST.items()}
    bad["server_eval_macs"][1] = float("nan")
    folder = write_run(tmp_path, "1_100_0.1_iid_fix_a1_bn_1_1", 0, [50.0, 80.0, 90.0, 95.0], bad)
    with pytest.raises(HeteroFLError, match="line 3, column server_eval_macs"):
        read_run_history(folder / "history.csv")


# -------------------------------------------------------------------------------------------- the cost table


def fabricated(accuracy: dict[int, list[float]], eval_rounds: list[int] | None = None) -> tuple:
    """runs/history/cost frames of one configuration with a seed per ``accuracy`` entry (4 rounds each)."""
    key = {"dataset": "MNIST5k", "model": "conv", "run": "ctl", "control": "ctl", "method": "heterofl"}
    config = {"data_split_mode": "iid", "model_mode": "a1", "model_split_mode": "fix", "global_letter": "a"}
    runs, history, cost = [], [], []
    for seed, values in accuracy.items():
        runs.append({**key, "seed": seed, **config, "letter": "a", "metric": "Global-Accuracy", "final": values[-1]})
        for round_, value in enumerate(values, start=1):
            if eval_rounds is None or round_ in eval_rounds:
                history.append({**key, "seed": seed, "round": round_, "letter": "a", "metric": "Global-Accuracy",
                                "value": value})  # fmt: skip
            cost.append({**key, "seed": seed, "round": round_, **{c: v[round_ - 1] for c, v in COST.items()}})
    return pd.DataFrame(runs), pd.DataFrame(history), pd.DataFrame(cost)


def test_cost_table_reaches_each_level_at_the_round_computed_by_hand():
    """Accuracy 50, 80, 90, 95: 90 % of 95 is 85.5, first reached at round 3 (2 MiB and 1 GMAC per round,
    so 6 MB and 3 GMAC); 95 % is 90.25, reached at round 4 (8 MB, 4 GMAC). A second seed reaching 90 % at
    round 2 (final 90, level 81) makes the mean 2.5 rounds, 5 MB and 2.5 GMAC."""
    table = cost_table(*fabricated({0: [50.0, 80.0, 90.0, 95.0]}), "MNIST5k", "iid")
    raw = table.raw.iloc[0]
    assert table.stem == "cost_MNIST5k_iid"
    assert (raw["round_90"], raw["mb_90"], raw["client_macs_90"]) == (3, 6.0, 3e9)
    assert (raw["round_95"], raw["mb_95"], raw["client_macs_95"]) == (4, 8.0, 4e9)
    assert (raw["total_mb"], raw["total_client_macs"], raw["total_server_macs"]) == (8.0, 4e9, 8e9)
    first = table.table.iloc[0]
    assert first["MB to 90 % of final"] == "6.0" and first["Client GMAC to 90 % of final"] == "3.00"

    two = cost_table(*fabricated({0: [50.0, 80.0, 90.0, 95.0], 1: [60.0, 85.0, 88.0, 90.0]}), "MNIST5k", "iid")
    raw = two.raw.iloc[0]
    assert raw["n"] == 2 and (raw["round_90"], raw["mb_90"], raw["client_macs_90"]) == (2.5, 5.0, 2.5e9)
    assert raw["final"] == pytest.approx(92.5)


def test_fiarse_sparse_upload_is_its_own_cost_column_and_absent_without_fiarse_runs():
    """A FIARSE run's sparse uploads (0.5, 1, 1.5, 2 MiB over four rounds: 5 MB) beside a HeteroFL run ("-");
    a table of HeteroFL runs alone has no such column, and its caption does not mention it."""
    runs, history, cost = fabricated({0: [50.0, 80.0, 90.0, 95.0]})
    runs_f, history_f, cost_f = (f.assign(run="ctl+fiarse", method="fiarse") for f in (runs, history, cost))
    cost_f["sparse_bytes_from_clients"] = [0.5 * MB, 1 * MB, 1.5 * MB, 2 * MB]
    pairs = ((runs, runs_f), (history, history_f), (cost, cost_f))
    both = cost_table(*(pd.concat(pair, ignore_index=True) for pair in pairs), "MNIST5k", "iid")
    shown = dict(zip(both.table["Method"], both.table["Sparse upload MB"], strict=True))
    assert shown == {"heterofl": "-", "fiarse": "5.0"}
    assert "Sparse upload MB" in both.caption
    alone = cost_table(runs, history, cost, "MNIST5k", "iid")
    assert "Sparse upload MB" not in alone.table.columns and "Sparse" not in alone.caption


def test_a_variant_of_a_method_is_its_own_cost_row_not_an_extra_seed():
    """DepthFL with and without FedDyn share the control string and the method: a run tagged +feddyn0.1
    (final 90, reaching 90 % at round 2) is its own row beside the plain run (final 95, round 3), not a second
    seed averaged into it (which would show n=2, round 2.5)."""
    runs, history, cost = fabricated({0: [50.0, 80.0, 90.0, 95.0]})
    plain = [f.assign(run="ctl+depthfl", method="depthfl") for f in (runs, history, cost)]
    runs_v, history_v, cost_v = fabricated({0: [60.0, 85.0, 88.0, 90.0]})
    variant = [f.assign(run="ctl+depthfl+feddyn0.1", method="depthfl") for f in (runs_v, history_v, cost_v)]
    table = cost_table(
        *(pd.concat(pair, ignore_index=True) for pair in zip(plain, variant, strict=True)), "MNIST5k", "iid"
    )
    rounds = dict(zip(table.table["Method"], table.raw["round_90"], strict=True))
    assert rounds == {"depthfl": 3, "depthfl (feddyn0.1)": 2}
    assert list(table.raw["n"]) == [1, 1]
    assert "variant" not in cost_table(*plain, "MNIST5k", "iid").raw.columns  # no variant: the columns as before


def test_only_evaluated_rounds_can_reach_a_level():
    """Evaluated at rounds 2 and 4 only (80 and 95): 85.5 is first seen at round 4, with all 4 rounds' cost."""
    raw = cost_table(*fabricated({0: [50.0, 80.0, 90.0, 95.0]}, eval_rounds=[2, 4]), "MNIST5k", "iid").raw.iloc[0]
    assert (raw["round_90"], raw["mb_90"], raw["client_macs_90"]) == (4, 8.0, 4e9)


def test_no_accounting_no_cost_table():
    runs, history, cost = fabricated({0: [50.0, 80.0, 90.0, 95.0]})
    assert cost_table(runs, history, cost.iloc[0:0], "MNIST5k", "iid") is None
    assert cost_table(runs, history, cost[cost["round"] != 1], "MNIST5k", "iid") is None  # round 1 unrecorded


def test_perplexity_levels_read_within_ten_and_five_percent_of_the_final():
    curve = pd.DataFrame({"round": [1, 2, 3, 4], "value": [300.0, 120.0, 108.0, 100.0]})
    cost = pd.DataFrame({"round": [1, 2, 3, 4], **COST})
    found = run_costs(curve, cost, lower_is_better=True)
    assert (found["round_90"], found["round_95"]) == (3, 4)  # 108 <= 110 at round 3; 105 first at round 4


# ----------------------------------------------------------------------------------------------- reproduce


def test_reproduce_compares_accounting_only_where_both_runs_recorded_it(tmp_path):
    accuracy = [50.0, 80.0, 90.0, 95.0]
    old = write_run(tmp_path / "old", "1_100_0.1_iid_fix_a1_bn_1_1", 0, accuracy, None)
    new = write_run(tmp_path / "new", "1_100_0.1_iid_fix_a1_bn_1_1", 0, accuracy, COST)
    comparison = compare_runs(old, new, 0.5)
    assert comparison.within and comparison.bitwise and comparison.accounting == "not recorded"
    assert compare_runs(new, new, 0.5).accounting == "equal"
    other = {k: list(v) for k, v in COST.items()}
    other["client_train_macs"][2] += 1
    changed = write_run(tmp_path / "changed", "1_100_0.1_iid_fix_a1_bn_1_1", 0, accuracy, other)
    comparison = compare_runs(new, changed, 0.5)
    assert not comparison.within and not comparison.bitwise
    assert comparison.accounting == "differs: round 3 client_train_macs 1000000000 -> 1000000001"

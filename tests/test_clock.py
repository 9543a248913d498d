"""The simulated clock and device fleets, against hand counts: a two-client round's seconds, the deadline, over-
commitment, the fleet file, bad device tables, resume with drops and jitter, and no change without a fleet."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from synthetic import image_dataset

from heterofl.checkpoint import load_checkpoint, save_checkpoint
from heterofl.clock import client_seconds, schedule_round
from heterofl.config import ExperimentConfig
from heterofl.data import make_partition
from heterofl.devices import (
    DeviceClass,
    Fleet,
    assign_fleet,
    class_counts,
    device_table,
    read_device_table,
    read_fleet,
    write_fleet,
)
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.identity import run_name
from heterofl.local_training import LocalSettings

DEVICES = Path(__file__).resolve().parents[1] / "config" / "devices.yaml"
# the MNIST CNN's parameters and forward MACs at rates a and e (tests/test_accounting.py derives them by hand)
PARAMS = {1.0: 1_556_874, 0.0625: 6_594}
MACS = {1.0: 39_974_912, 0.0625: 182_912}
SLOW = DeviceClass("slow", train_gflops=1.0, down_mbps=8.0, up_mbps=4.0, source="test")
FAST = DeviceClass("fast", train_gflops=10.0, down_mbps=80.0, up_mbps=40.0, source="test")
TWO = {
    "dataset": "MNIST5k",
    "control": "1_2_1_iid_fix_a1-e1_bn_1_1",
    "rounds": 2,
    "eval_every": 2,
    "local_epochs": 2,
    "batch_size_train": 5,
    "engine": "sequential",
    "eval_rates": "global",
    "fleet": "two",
}


def _two_client_federation(**settings) -> tuple[Federation, list[int]]:
    dataset = image_dataset(n_train=24, n_test=11, cyclic_labels=True)
    partition = make_partition(dataset, "iid", 2, seed=0)
    config = ExperimentConfig.from_dict({**TWO, **settings})
    fleet = Fleet("two", 2, 0, {"slow": SLOW, "fast": FAST}, ("slow", "fast"))  # client 0 (rate a) is slow
    federation = Federation(config, dataset, partition, torch.device("cpu"), fleet=fleet)
    return federation, [len(ix) for ix in partition.train_indices]


def _hand_seconds(samples: list[int]) -> tuple[float, float]:
    bytes_a, bytes_e = 4 * PARAMS[1.0], 4 * PARAMS[0.0625]
    macs_a, macs_e = 3 * 2 * samples[0] * MACS[1.0], 3 * 2 * samples[1] * MACS[0.0625]  # 2 local epochs
    slow = 8 * bytes_a / 8e6 + 2 * macs_a / 1e9 + 8 * bytes_a / 4e6
    fast = 8 * bytes_e / 80e6 + 2 * macs_e / 10e9 + 8 * bytes_e / 40e6
    return slow, fast


def test_client_seconds_is_download_plus_training_plus_upload_times_jitter():
    assert client_seconds(SLOW, 1_000_000, 500_000, 2_000_000_000, 1.0) == pytest.approx(1 + 4 + 1)
    assert client_seconds(SLOW, 1_000_000, 500_000, 2_000_000_000, 1.5) == pytest.approx(9)


def test_a_two_client_round_lasts_as_long_as_the_slow_client_computed_by_hand():
    federation, samples = _two_client_federation()
    state = federation.run_round(federation.initial_state())
    row = state.history[-1]
    slow, fast = _hand_seconds(samples)
    assert slow > fast
    assert row["sim_round_seconds"] == pytest.approx(slow, rel=1e-12) == row["sim_seconds"]
    assert row["clients"] == 2 and row["clients_dropped"] == 0 and row["wasted_client_train_macs"] == 0
    state = federation.run_round(state)
    assert state.history[-1]["sim_seconds"] == pytest.approx(2 * slow, rel=1e-12)  # the same two clients again


def test_the_deadline_drops_exactly_the_late_client_and_its_update():
    slow, fast = _hand_seconds(_two_client_federation()[1])
    federation, samples = _two_client_federation(deadline=(slow + fast) / 2)
    start = federation.initial_state()
    state = federation.run_round(start)
    row = state.history[-1]
    assert row["clients"] == 1 and row["clients_dropped"] == 1 and row["dropped_slow"] == 1 and row["dropped_fast"] == 0
    assert (row["sampled_slow"], row["kept_slow"], row["sampled_fast"], row["kept_fast"]) == (1, 0, 1, 1)
    assert (row["sampled_samples_slow"], row["kept_samples_slow"]) == (samples[0], 0)
    assert (row["sampled_samples_fast"], row["kept_samples_fast"]) == (samples[1], samples[1])
    assert row["sim_round_seconds"] == pytest.approx((slow + fast) / 2)  # the server waited until the deadline
    assert row["wasted_client_train_macs"] == 3 * 2 * samples[0] * MACS[1.0]
    assert row["bytes_to_clients"] == 4 * (PARAMS[1.0] + PARAMS[0.0625])  # both downloaded
    assert row["bytes_from_clients"] == 4 * PARAMS[0.0625]  # only the fast client's update arrived
    outer = start.params["classifier.weight"][:, 32:]  # units beyond rate e's: only the dropped client held them
    assert torch.equal(state.params["classifier.weight"][:, 32:], outer)
    assert not torch.equal(state.params["classifier.weight"][:, :32], start.params["classifier.weight"][:, :32])


def test_a_round_in_which_every_update_is_lost_keeps_the_model():
    federation, _ = _two_client_federation(deadline=1e-6)
    start = federation.initial_state()
    state = federation.run_round(start)
    row = state.history[-1]
    assert row["clients"] == 0 and row["clients_dropped"] == 2 and math.isnan(row["train_loss"])
    assert row["sim_round_seconds"] == 1e-6
    assert all(torch.equal(v, start.params[k]) for k, v in state.params.items())


def test_overcommitment_keeps_the_first_k_to_finish():
    plan = schedule_round([5.0, 1.0, 3.0, 2.0], [True] * 4, wanted=2, deadline=None)
    assert plan.kept == (1, 3) and plan.dropped == (0, 2) and plan.seconds == 2.0
    plan = schedule_round([5.0, 1.0, 3.0, 2.0], [True, False, True, True], wanted=2, deadline=None)
    assert plan.kept == (2, 3) and plan.offline == (1,) and plan.seconds == 3.0
    plan = schedule_round([5.0, 1.0, 3.0, 2.0], [True] * 4, wanted=3, deadline=2.5)
    assert plan.kept == (1, 3) and plan.dropped == (0, 2) and plan.seconds == 2.5  # waited out the deadline
    plan = schedule_round([5.0, 1.0, 3.0, 2.0], [True] * 4, wanted=4, deadline=None)
    assert plan.kept == (0, 1, 2, 3) and plan.seconds == 5.0  # wait for every client


def test_overcommit_samples_more_clients_and_trains_only_the_first_k():
    dataset = image_dataset(n_train=200, cyclic_labels=True)
    config = ExperimentConfig.from_dict(
        {**TWO, "control": "1_10_0.3_iid_fix_a1_bn_1_1", "fleet": "mix", "overcommit": 1.5, "local_epochs": 1}
    )
    table = device_table(
        {"classes": {"slow": _raw(SLOW), "fast": _raw(FAST)}, "fleets": {"mix": {"slow": 0.5, "fast": 0.5}}}
    )
    fleet = assign_fleet(table, "mix", 10, 0)
    federation = Federation(
        config, dataset, make_partition(dataset, "iid", 10, seed=0), torch.device("cpu"), fleet=fleet
    )
    row = federation.run_round(federation.initial_state()).history[-1]
    assert row["clients_sampled"] == math.ceil(1.5 * 3) == 5 and row["clients"] == 3 and row["clients_dropped"] == 2


def _raw(device: DeviceClass) -> dict:
    return {k: getattr(device, k) for k in ("train_gflops", "down_mbps", "up_mbps", "jitter", "availability", "source")}


def test_the_fleet_deals_shares_by_largest_remainder_and_is_the_same_for_a_seed(tmp_path):
    table = read_device_table(DEVICES)
    assert class_counts(table.fleets["flash-phones"], 20) == {"phone-slow": 11, "phone-mid": 9, "phone-fast": 0}
    assert class_counts({"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}, 4) == {"x": 2, "y": 1, "z": 1}  # ties: table order
    first, again = tmp_path / "a.json", tmp_path / "b.json"
    write_fleet(assign_fleet(table, "long-tail", 20, 3), first)
    write_fleet(assign_fleet(table, "long-tail", 20, 3), again)
    assert first.read_bytes() == again.read_bytes()
    other = assign_fleet(table, "long-tail", 20, 4)
    fleet = read_fleet(first)
    assert fleet.devices != other.devices and sorted(fleet.devices) == sorted(other.devices)
    assert fleet.devices.count("laptop-m1") == 10 and fleet.device(0).source


def test_a_damaged_fleet_file_is_refused(tmp_path):
    path = tmp_path / "fleet.json"
    write_fleet(assign_fleet(read_device_table(DEVICES), "long-tail", 20, 0), path)
    raw = json.loads(path.read_text())
    raw["devices"][0] = "laptop-m1" if raw["devices"][0] != "laptop-m1" else "phone-slow"
    path.write_text(json.dumps(raw))
    with pytest.raises(HeteroFLError, match="fails its content hash"):
        read_fleet(path)
    path.write_text(path.read_text()[:50])
    with pytest.raises(HeteroFLError, match="cannot be read"):
        read_fleet(path)


def test_a_fleet_file_for_another_run_is_refused():
    fleet = Fleet("two", 2, 1, {"slow": SLOW, "fast": FAST}, ("slow", "fast"))
    dataset = image_dataset(n_train=24, cyclic_labels=True)
    config = ExperimentConfig.from_dict(TWO)
    with pytest.raises(HeteroFLError, match="is for seed 1, the run's is 0"):
        Federation(config, dataset, make_partition(dataset, "iid", 2, seed=0), torch.device("cpu"), fleet=fleet)
    without = Federation(config, dataset, make_partition(dataset, "iid", 2, seed=0), torch.device("cpu"))
    assert set(without.evaluate(without.initial_state().params)) == {"a"}  # evaluation needs no clock
    with pytest.raises(HeteroFLError, match="no fleet file was given"):
        without.run_round(without.initial_state())  # training does


GOOD = {"train_gflops": 1.0, "down_mbps": 2.0, "up_mbps": 3.0, "source": "a paper"}


@pytest.mark.parametrize(
    ("classes", "fleets", "field"),
    [
        ({"x": {**GOOD, "train_gflops": -1}}, {"f": {"x": 1.0}}, "devices.classes.x.train_gflops"),
        ({"x": {**GOOD, "up_mbps": 0}}, {"f": {"x": 1.0}}, "devices.classes.x.up_mbps"),
        ({"x": {**GOOD, "availability": 1.5}}, {"f": {"x": 1.0}}, "devices.classes.x.availability"),
        ({"x": {**GOOD, "source": ""}}, {"f": {"x": 1.0}}, "devices.classes.x.source"),
        ({"x": {**GOOD, "speed": 3}}, {"f": {"x": 1.0}}, "devices.classes.x.speed"),
        ({"x": GOOD}, {"f": {"y": 1.0}}, "devices.fleets.f.y"),
        ({"x": GOOD, "y": GOOD}, {"f": {"x": 0.5, "y": 0.4}}, "devices.fleets.f"),
        ({"x": GOOD}, {"f": {"x": -1.0}}, "devices.fleets.f.x"),
    ],
)
def test_a_bad_device_table_is_refused_in_one_line_naming_the_key(classes, fleets, field):
    with pytest.raises(HeteroFLError) as error:
        device_table({"classes": classes, "fleets": fleets})
    assert error.value.field == field and "\n" not in str(error.value)


def test_the_committed_device_table_is_valid_and_sourced():
    raw = yaml.safe_load(DEVICES.read_text())
    table = device_table(raw)
    assert len(table.fleets) >= 2 and all(c.source for c in table.classes.values())


def test_clock_settings_need_a_fleet_and_name_the_run():
    with pytest.raises(HeteroFLError, match="^deadline: is set but no fleet is"):
        ExperimentConfig.from_dict({**TWO, "fleet": None, "deadline": 10})
    with pytest.raises(HeteroFLError, match="^overcommit:"):
        ExperimentConfig.from_dict({**TWO, "overcommit": 0.5})
    config = ExperimentConfig.from_dict({**TWO, "deadline": 30, "overcommit": 1.3})
    assert run_name(config) == "1_2_1_iid_fix_a1-e1_bn_1_1+fleet-two+deadline30s+oc1.3"
    plain = ExperimentConfig.from_dict({k: v for k, v in TWO.items() if k != "fleet"})
    assert plain.config_hash() != config.config_hash() != config.replace(deadline=None).config_hash()


def test_a_run_with_drops_and_jitter_resumes_bitwise(tmp_path):
    dataset = image_dataset(n_train=200, cyclic_labels=True)
    table = read_device_table(DEVICES)
    config = ExperimentConfig.from_dict(
        {**TWO, "control": "1_10_0.3_iid_fix_a1-e1_bn_1_1", "fleet": "long-tail", "deadline": 40.0,
         "overcommit": 1.4, "local_epochs": 1, "rounds": 3, "eval_every": 3}
    )  # fmt: skip
    partition = make_partition(dataset, "iid", 10, seed=0)

    def federation() -> Federation:
        made = Federation(
            config, dataset, partition, torch.device("cpu"), fleet=assign_fleet(table, "long-tail", 10, 0)
        )
        made.build_models()
        return made

    first = federation()
    state = first.run_round(first.initial_state())
    save_checkpoint(tmp_path / "checkpoint.pt", config, state)
    straight = first.run_round(first.run_round(state))
    again = federation()
    resumed = load_checkpoint(tmp_path / "checkpoint.pt", config, torch.device("cpu"))
    resumed = again.run_round(again.run_round(resumed))
    assert sum(row["clients_dropped"] for row in straight.history) > 0  # drops happened
    assert len({row["sim_round_seconds"] for row in straight.history}) == 3  # jitter moved every round
    for name, value in straight.params.items():
        assert torch.equal(value, resumed.params[name]), name
    for row, other in zip(straight.history, resumed.history, strict=True):
        assert {k: v for k, v in row.items() if not k.startswith("seconds_")} == {
            k: v for k, v in other.items() if not k.startswith("seconds_")
        }


def test_capability_gives_each_client_the_largest_width_its_device_finishes_in_time():
    """Slow client 0: rate a takes 24.4 s, rate e 0.1 s; fast client 1: rate a 2.4 s (hand counts above)."""
    slow_a, fast_a = _hand_seconds(_two_client_federation()[1])
    assert fast_a < 10 < slow_a
    federation, samples = _two_client_federation(deadline=10.0, capability_widths=True)
    state = federation.initial_state()
    jobs, _ = federation._round_jobs(1, torch.Generator().manual_seed(0), {}, _settings())
    assert {job.user: job.rate for job in jobs} == {0: 0.0625, 1: 1.0}  # swapped against the fix mode a1-e1
    row = federation.run_round(state).history[-1]
    assert row["clients_unfit"] == 0 and row["clients_dropped"] == 0
    expected = 3 * 2 * (samples[0] * MACS[0.0625] + samples[1] * MACS[1.0])
    assert row["client_train_macs"] == expected


def test_a_client_that_misses_the_deadline_at_every_width_is_named_and_counted(caplog):
    federation, _ = _two_client_federation(deadline=0.05, capability_widths=True)
    with caplog.at_level("INFO", logger="heterofl.federation"):
        row = federation.run_round(federation.initial_state()).history[-1]
    assert row["clients_unfit"] == 1 and row["clients_dropped"] == 1 and row["dropped_slow"] == 1
    assert "clients [0] cannot meet the deadline even at the smallest width" in caplog.text


def _settings():
    return LocalSettings(lr=0.01, momentum=0.9, weight_decay=5e-4, clip_norm=1.0, epochs=2, batch_size=5, use_mask=True)


@pytest.mark.parametrize("method", ["fedrolex", "fd", "fedecover", "fjord", "fiarse"])
def test_every_method_trains_with_capability_widths(method):
    federation, _ = _two_client_federation(deadline=10.0, capability_widths=True, method=method, rounds=1)
    row = federation.run_round(federation.initial_state()).history[-1]
    assert math.isfinite(row["train_loss"])
    # a FIARSE client trains the dense model at every size: the slow one cannot fit the deadline at any width
    assert (row["clients"], row["clients_unfit"]) == ((1, 1) if method == "fiarse" else (2, 0))


@pytest.mark.slow
def test_a_sigkilled_run_with_drops_and_jitter_resumes_bitwise(tmp_path):
    """The real CLI, killed at a random moment after its first checkpoint, run again, compared with an
    uninterrupted run: model.pt bitwise, history.csv as text without the wall-clock columns."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from test_method_resume import history_without_timing, params_of

    from heterofl.results import CHECKPOINT

    fleet = tmp_path / "fleet.json"
    write_fleet(assign_fleet(read_device_table(DEVICES), "long-tail", 10, 0), fleet)
    settings = ["local_epochs=1", "batch_size_train=50", "eval_rates=global", "rounds=5", "eval_every=5",
                "fleet=long-tail", "deadline=40", "overcommit=1.4"]  # fmt: skip

    def command(out: Path) -> list[str]:
        argv = ["train", "--dataset", "MNIST5k", "--control", "1_10_0.3_iid_fix_a1-e1_bn_1_1", "--threads", "1"]
        argv += ["--quiet", "--out", str(out), "--fleet", str(fleet)]
        for pair in settings:
            argv += ["--set", pair]
        return [sys.executable, "-m", "heterofl", *argv]

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    ref = subprocess.Popen(command(reference), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (killed / CHECKPOINT).exists():
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.3))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL, "the run finished before the kill"
        done = subprocess.run(command(killed), capture_output=True, text=True, env=env, timeout=180)
        assert done.returncode == 0, done.stderr
        assert f"resuming {killed} from round" in (killed / "train.log").read_text()
    finally:
        _, err = ref.communicate(timeout=180)
    assert ref.returncode == 0, err.decode()
    history = history_without_timing(reference)
    assert history["clients_dropped"].astype(int).sum() > 0  # the deadline and over-commitment dropped updates
    assert history.equals(history_without_timing(killed))
    for name, value in params_of(reference).items():
        assert torch.equal(value, params_of(killed)[name]), name

"""Reliability: kill -9 and resume bit for bit, safe checkpoint loading, atomic outputs, divergence.

The kill test runs the real CLI in a subprocess, SIGKILLs it at a random moment after its first checkpoint and
before it finishes, runs the same command again (which resumes by itself) and compares the result with an
uninterrupted run of the same seed: ``model.pt`` tensors with ``torch.equal`` and ``history.csv`` as text,
column by column, except the wall-clock columns ``seconds_*`` (time spent per phase), which legitimately differ.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from heterofl.checkpoint import read_checkpoint, save_checkpoint
from heterofl.cli import build_config, main
from heterofl.errors import HeteroFLError
from heterofl.federation import RunState
from heterofl.io import write_bytes
from heterofl.lock import LOCK_NAME
from heterofl.results import CHECKPOINT, FAILED, RUN_FILES

CONTROL = "1_4_0.5_iid_fix_e1_bn_1_1"
BASE = ["--dataset", "MNIST5k", "--control", CONTROL, "--threads", "1", "--quiet"]
SETTINGS = ("local_epochs=1", "eval_rates=global", "checkpoint_every=1")


def train_argv(out: Path, *settings: str) -> list[str]:
    argv = ["train", *BASE, "--out", str(out)]
    given = {pair.split("=", 1)[0] for pair in settings}  # a key given twice is refused: settings override
    for pair in (*(p for p in SETTINGS if p.split("=", 1)[0] not in given), *settings):
        argv += ["--set", pair]
    return argv


def cli(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "heterofl", *argv]


def final_files(run: Path) -> list[str]:
    return sorted(RUN_FILES[k] for k in ("config", "history", "model") if (run / RUN_FILES[k]).exists())


def history_without_timing(run: Path) -> pd.DataFrame:
    """history.csv as text (bitwise), without the wall-clock ``seconds_*`` columns."""
    frame = pd.read_csv(run / RUN_FILES["history"], dtype=str, keep_default_na=False)
    timing = [c for c in frame.columns if c.startswith("seconds_")]
    assert timing, "history.csv is expected to hold wall-clock seconds_* columns"
    return frame.drop(columns=timing)


def params_of(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / RUN_FILES["model"], map_location="cpu", weights_only=True)["params"]


# ------------------------------------------------------------------------------------ kill -9 and resume


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sequential", "auto"])
def test_sigkilled_run_resumes_bitwise_identical(engine, tmp_path):
    rounds = 6
    settings = (f"rounds={rounds}", f"engine={engine}")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(cli(train_argv(reference, *settings)), check=True, capture_output=True, env=env, timeout=300)

    process = subprocess.Popen(
        cli(train_argv(killed, *settings)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / CHECKPOINT).exists():
            assert process.poll() is None, "training ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        delay = random.uniform(0.0, 1.0)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the run finished before the kill (delay {delay:.2f} s)"

    # a killed run leaves nothing a reader could take for complete: only the checkpoint and the log
    assert final_files(killed) == []
    left = {p.name for p in killed.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))}
    assert left <= {CHECKPOINT, "train.log", LOCK_NAME}, left  # a killed writer's lock is stale, replaced on resume
    config = build_config(None, CONTROL, "MNIST5k", None, (*SETTINGS, *settings))
    stopped_at = int(read_checkpoint(killed / CHECKPOINT, config)["round"])
    assert 1 <= stopped_at < rounds

    done = subprocess.run(cli(train_argv(killed, *settings)), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming {killed} from round" in (killed / "train.log").read_text()

    want, got = params_of(reference), params_of(killed)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), f"{name} differs after kill at round {stopped_at} (+{delay:.2f} s)"
    pd.testing.assert_frame_equal(history_without_timing(killed), history_without_timing(reference))
    assert len(history_without_timing(killed)) == rounds
    assert (killed / RUN_FILES["config"]).read_bytes() == (reference / RUN_FILES["config"]).read_bytes()


# ------------------------------------------------------------------------------------ safe loading


def tiny_state(round_: int = 2) -> RunState:
    params = {"w": torch.linspace(-1, 1, 50), "b": torch.zeros(3)}
    return RunState(round_, params, torch.Generator().manual_seed(5).get_state(), [{"round": 1, "loss": 0.5}])


def config_for(**settings) -> object:
    return build_config(None, CONTROL, "MNIST5k", None, tuple(f"{k}={v}" for k, v in settings.items()))


def test_checkpoint_holds_state_and_rngs_and_round_trips(tmp_path):
    config = config_for(rounds=3)
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    save_checkpoint(tmp_path / CHECKPOINT, config, tiny_state())
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    blob = torch.load(tmp_path / CHECKPOINT, weights_only=True)  # loads under the safe unpickler
    assert {"params", "round", "history", "sampler_state", "rng", "config_hash"} <= set(blob)
    assert set(blob["rng"]) >= {"python", "numpy", "torch"}
    from heterofl.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / CHECKPOINT, config, torch.device("cpu"))
    assert state.round == 2 and torch.equal(state.params["w"], tiny_state().params["w"])
    assert torch.equal(state.sampler_state, tiny_state().sampler_state)
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_checkpoint_of_another_config_is_refused_naming_the_fields(tmp_path):
    save_checkpoint(tmp_path / CHECKPOINT, config_for(rounds=3, lr=0.01), tiny_state())
    with pytest.raises(HeteroFLError) as error:
        read_checkpoint(tmp_path / CHECKPOINT, config_for(rounds=3, lr=0.02, seed=4))
    message = str(error.value)
    assert "\n" not in message and message.startswith("checkpoint:")
    assert "lr: checkpoint 0.01 vs requested 0.02" in message and "seed: checkpoint 0 vs requested 4" in message
    assert "rounds" not in message  # only the fields that differ


@pytest.mark.parametrize("damage", ["truncated", "bit-flip", "empty"])
def test_corrupt_checkpoint_is_detected_and_nothing_is_half_loaded(damage, tmp_path):
    config = config_for(rounds=3)
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, config, tiny_state())
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    elif damage == "bit-flip":  # in the weight bytes: torch.load alone does not notice this one
        at = bytes(data).index(tiny_state().params["w"].numpy().tobytes()) + 17
        data[at] ^= 0x08
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    torch.manual_seed(99)
    rng_before = torch.get_rng_state()
    from heterofl.checkpoint import load_checkpoint

    with pytest.raises(HeteroFLError, match=r"^checkpoint: .*(corrupt|truncated)") as error:
        load_checkpoint(path, config, torch.device("cpu"))
    assert "\n" not in str(error.value)
    assert torch.equal(torch.get_rng_state(), rng_before), "a refused checkpoint changed the RNG state"


class _Payload:
    """Unpickling this runs code (creates a marker file): weights_only=True must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    blob = {"format": 2, "params": {"w": torch.zeros(1)}, "evil": _Payload(marker)}
    torch.save(blob, tmp_path / CHECKPOINT)
    with pytest.raises(HeteroFLError, match="^checkpoint: "):
        read_checkpoint(tmp_path / CHECKPOINT, config_for(rounds=3))
    assert not marker.exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / CHECKPOINT
    write_bytes(target, b"old complete content")

    def half_then_crash(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_crash)
    with pytest.raises(OSError):
        write_bytes(target, b"new content that never lands")
    monkeypatch.undo()
    assert target.read_bytes() == b"old complete content"
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT], "a temporary file was left behind"


# ------------------------------------------------------------------------------------ divergence


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_divergence_stops_with_round_and_client_and_keeps_last_good_checkpoint(engine, tmp_path, capsys):
    """lr=1e30 with one local step per round: round 1's loss comes from the initial weights and is finite, the
    weights it produces (~1e28) overflow the next forward pass, so round 2 diverges for every client."""
    out = tmp_path / "run"
    settings = ("rounds=4", "batch_size_train=1000", "lr=1e30", f"engine={engine}")
    code = main(train_argv(out, *settings))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "round 2" in lines[0] and "client " in lines[0], lines[0]
    assert (out / FAILED).read_text().strip() in lines[0]
    assert final_files(out) == []  # a failed run leaves no output that looks complete
    config = build_config(None, CONTROL, "MNIST5k", None, (*SETTINGS, *settings))
    blob = read_checkpoint(out / CHECKPOINT, config)
    assert blob["round"] == 1 and len(blob["history"]) == 1
    assert all(torch.isfinite(v).all() for v in blob["params"].values())


def test_deterministic_environment_variable_switches_torch_to_deterministic_kernels(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HETEROFL_DETERMINISTIC", "1")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # restored after the test
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    was = torch.are_deterministic_algorithms_enabled()
    try:
        assert main(train_argv(tmp_path / "run", "rounds=1", "engine=sequential")) == 0
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(was)


def test_divergence_before_any_checkpoint_says_so(tmp_path, capsys):
    """With checkpoint_every larger than the rounds done, the FAILED note must not cite a missing checkpoint."""
    out = tmp_path / "run"
    code = main(train_argv(out, "rounds=4", "batch_size_train=1000", "lr=1e30", "checkpoint_every=3"))
    assert code == 1
    assert not (out / CHECKPOINT).exists()
    assert "no checkpoint was written yet" in (out / FAILED).read_text()


def test_newer_checkpoint_format_is_named_as_such(tmp_path):
    config = build_config(None, CONTROL, "MNIST5k", None, SETTINGS)
    path = tmp_path / CHECKPOINT
    torch.save({"format": 99, "something_new": 1}, path)
    with pytest.raises(HeteroFLError, match=r"written by a newer heterofl \(format 99; this version reads 2\)"):
        read_checkpoint(path, config)


# ------------------------------------------------------------------------------------ divergence without NaN


def history_of(losses: list[float], metric: list[float | None], column: str = "e_Global-Accuracy") -> pd.DataFrame:
    """A hand-made history.csv: one train loss per round, the global metric on evaluated rounds (None: none)."""
    return pd.DataFrame(
        {
            "round": range(1, len(losses) + 1),
            "train_loss": losses,
            column: [float("nan") if v is None else v for v in metric],
        }
    )


@pytest.mark.parametrize(
    ("case", "losses", "accuracy"),
    [
        ("lr 1000: loss 1e5, accuracy at chance", [2.3, 5e2, 1e5], [10.0, 9.8, 11.35]),
        ("first round already exploded", [4e3, 2e4, 1e5], [10.0, 10.2, 9.9]),
        ("learned, then blew up", [0.4, 0.2, 6.0], [92.0, 10.0, 10.0]),
        ("evaluated every other round", [2.3, 90.0, 300.0, 80.0, 60.0], [None, 10.0, None, 11.0, 10.0]),
    ],
)
def test_divergence_rule_flags_exploded_runs_at_chance(case, losses, accuracy):
    from heterofl.divergence import detect_divergence

    reason = detect_divergence(history_of(losses, accuracy), "e", 10)
    assert reason is not None, case
    assert "\n" not in reason and f"{losses[-1]:.3g}" in reason and "chance 10 %" in reason, reason


@pytest.mark.parametrize(
    ("case", "losses", "accuracy"),
    [
        ("healthy but slow: loss near ln 10, accuracy at chance", [2.31, 2.30, 2.30, 2.29], [10.0, 9.8, 11.0, 10.4]),
        ("healthy and learning", [2.3, 1.2, 0.6], [40.0, 75.0, 88.0]),
        ("loss spiked but accuracy above chance", [2.3, 80.0, 40.0], [10.0, 30.0, 55.0]),
        ("recovered at the last evaluation", [2.3, 1e3, 30.0], [10.0, 10.0, 20.0]),
        ("only one evaluation", [2.3, 1e3, 1e5], [None, None, 10.0]),
        ("loss up but below 10 x ln C", [2.3, 9.0, 20.0], [10.0, 10.0, 10.0]),
    ],
)
def test_divergence_rule_leaves_healthy_or_recovering_runs_alone(case, losses, accuracy):
    from heterofl.divergence import detect_divergence

    assert detect_divergence(history_of(losses, accuracy), "e", 10) is None, case


def test_divergence_rule_for_the_language_model_uses_the_uniform_perplexity():
    from heterofl.divergence import detect_divergence

    column = "a_Global-Perplexity"
    exploded = history_of([6.9, 300.0, 2e3], [None, 1e4, float("inf")], column)
    assert "uniform model 1e+03" in detect_divergence(exploded, "a", 1000)
    learning = history_of([6.9, 6.0, 70.0], [None, 900.0, 400.0], column)  # loss up, perplexity below 1000 / 1.5
    assert detect_divergence(learning, "a", 1000) is None
    assert detect_divergence(history_of([6.9, 100.0], [None, None]).drop(columns="e_Global-Accuracy"), "e", 10) is None


def test_finite_divergence_is_flagged_kept_and_left_out_of_the_tables(tmp_path, capsys):
    """lr 1000: the loss goes to hundreds or more without NaN and the global model sits at chance; the run
    finishes with all its files and a DIVERGED line, and the tables average only the healthy seed."""
    from heterofl.evaluate_run import evaluate_run
    from heterofl.report import write_summary, write_tables
    from heterofl.results import DIVERGED, run_dir

    root = tmp_path / "runs"
    bad, good = run_dir(root, "MNIST5k", "conv", CONTROL, 0), run_dir(root, "MNIST5k", "conv", CONTROL, 1)
    assert main(train_argv(bad, "rounds=3", "lr=1000", "batch_size_train=1000")) == 0
    assert main([*train_argv(good, "rounds=1", "batch_size_train=1000"), "--seed", "1"]) == 0
    assert final_files(bad) == sorted(RUN_FILES[k] for k in ("config", "history", "model"))
    reason = (bad / DIVERGED).read_text()
    assert reason.count("\n") == 1 and "train loss" in reason and "chance 10 %" in reason, reason
    assert f"WARNING {bad} diverged: {reason.strip()}" in (bad / "train.log").read_text()
    assert f"{bad} diverged" in capsys.readouterr().err
    assert not (good / DIVERGED).exists()
    for run in (bad, good):
        evaluate_run(run)

    write_summary(tmp_path / "summary", root)
    runs = pd.read_csv(tmp_path / "summary" / "runs.csv")
    flags = runs.groupby("seed")["diverged"].first()
    assert flags.to_dict() == {0: True, 1: False}
    assert runs.loc[runs["seed"] == 0, "diverged_reason"].iloc[0] == reason.strip()
    write_tables(tmp_path / "summary" / "runs.csv", tmp_path / "tables")
    raw = pd.read_csv(tmp_path / "tables" / "combination_MNIST5k_raw.csv")
    healthy = runs[(runs["seed"] == 1) & (runs["metric"] == "Global-Accuracy") & (runs["letter"] == "e")]
    assert raw["iid_n"].tolist() == [1] and raw["iid_mean"].iloc[0] == pytest.approx(healthy["mean_last_k"].iloc[0])
    note = f"excluded: MNIST5k/conv/{CONTROL}/seed0 diverged ({reason.strip()})"
    for ext in ("md", "index"):
        text = (tmp_path / "tables" / ("index.md" if ext == "index" else "combination_MNIST5k.md")).read_text()
        assert note in text, text
    assert "excluded: MNIST5k/conv/" in (tmp_path / "tables" / "combination_MNIST5k.tex").read_text()


# ------------------------------------------------------------------------------------ refusals and logs


def test_client_without_training_data_is_refused_before_training_naming_it(tmp_path, capsys):
    """A hand-made partition that gives clients 1 and 3 nothing: one line naming them, no run folder files."""
    from heterofl.data import load_dataset, make_partition, write_partition
    from heterofl.data.partition import _build

    dataset = load_dataset("MNIST5k")
    full = make_partition(dataset, "iid", 4, 0)
    fields = {k: getattr(full, k) for k in ("dataset", "scheme", "variant", "seed", "num_users", "dataset_fingerprint")}
    empty = np.empty(0, dtype=np.int64)
    train = tuple(empty if u in (1, 3) else ix for u, ix in enumerate(full.train_indices))
    labels = tuple(empty if u in (1, 3) else ix for u, ix in enumerate(full.label_sets))  # consistent, else refused
    write_partition(
        _build(**fields, train_indices=train, test_indices=full.test_indices, label_sets=labels),
        tmp_path / "partition.json",
    )
    out = tmp_path / "run"
    code = main([*train_argv(out, "rounds=1"), "--partition", str(tmp_path / "partition.json")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: partition: "), lines
    assert "no training samples to clients 1, 3 (of 4)" in lines[0], lines[0]
    assert not (out / "train.log").exists() and not (out / FAILED).exists()  # no empty log, no divergence


def test_failed_run_logs_its_message_in_train_log_once_on_stderr(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_argv(out, "rounds=2", "batch_size_train=1000", "lr=1e30")) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    message = (out / FAILED).read_text().strip()
    assert err == [f"error: {message}"]
    log_text = (out / "train.log").read_text()
    assert log_text.strip() and f"ERROR {message}" in log_text


def test_train_names_its_run_and_method_first_and_says_how_much_time_evaluation_took(tmp_path, capsys) -> None:
    """Issue 24: a ``heterofl train`` never named its method, and no output said that per-round evaluation
    took most of a short run. The last line's share is the history's seconds_evaluate over all seconds."""
    out = tmp_path / "run"
    argv = [*train_argv(out, "rounds=2", "method=fedrolex", "batch_size_train=1000"), "--device", "cpu"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out}: training {CONTROL}+fedrolex") and "with FedRolex, 2 rounds" in lines[0]
    assert "evaluated every round at the global rate" in lines[0]
    history = pd.read_csv(out / RUN_FILES["history"])
    evaluating, training = history["seconds_evaluate"].sum(), history["seconds_train"].sum()
    assert f"({evaluating / (evaluating + training):.0%} of it in per-round evaluation" in lines[-1]

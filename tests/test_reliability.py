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
    for pair in (*SETTINGS, *settings):
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

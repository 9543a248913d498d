"""kill -9 and resume bit for bit for the randomised extraction methods (Federated Dropout, FedEcover) and
for DepthFL (its distillation weight changes every round, so a resume that restarted the ramp would differ).

Same pattern as ``test_reliability.py``: the real CLI in a subprocess, SIGKILLed at a random moment after
its first checkpoint, run again (it resumes by itself) and compared with an uninterrupted run of the same
seed: ``model.pt`` with ``torch.equal`` and ``history.csv`` as text without the wall-clock columns. The
global model (rate c) is larger than every client's (rate e, ``c0-e1``), so every client holds a random
quarter of every width group. FedEcover's pools live in the checkpoint: with one client per round a pool
still holds 3/4, 1/2, 1/4 of its units after rounds 1, 2, 3, so a resume that lost the pools would draw
other units. Only the last round evaluates, which keeps the run short. The reference
run runs alongside the killed one (one thread each) to keep the test short.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from heterofl.checkpoint import read_checkpoint
from heterofl.config import ExperimentConfig
from heterofl.results import CHECKPOINT, RUN_FILES

ROUNDS = 4
SETTINGS = (
    "local_epochs=1",
    "batch_size_train=50",
    "eval_rates=global",
    "checkpoint_every=1",
    f"rounds={ROUNDS}",
    f"eval_every={ROUNDS}",
)
CONTROLS = {
    "fd": "1_4_0.5_iid_fix_c0-e1_bn_1_1",
    "fedecover": "1_4_0.25_iid_fix_c0-e1_bn_1_1",
    "depthfl": "1_4_0.5_iid_fix_a1-c1_bn_1_1",  # depth 4 and depth 2
    "depthfl+feddyn": "1_4_0.5_iid_fix_a1-c1_bn_1_1",  # with FedDyn's per-client and server state
}


def method_settings(case: str) -> tuple[str, ...]:
    """``method=...`` for a case, and FedDyn's α for a ``+feddyn`` case."""
    method, _, variant = case.partition("+")
    return (f"method={method}", *(("feddyn_alpha=0.1",) if variant == "feddyn" else ()))


# rate c of the conv model: ceil(base / 4) units per group; a client of rate e holds a quarter of them
SIZES = {"h0": 16, "h1": 32, "h2": 64, "h3": 128}


def train_cmd(out: Path, method: str) -> list[str]:
    argv = ["train", "--dataset", "MNIST5k", "--control", CONTROLS[method], "--threads", "1", "--quiet"]
    argv += ["--out", str(out)]
    for pair in (*SETTINGS, *method_settings(method)):
        argv += ["--set", pair]
    return [sys.executable, "-m", "heterofl", *argv]


def history_without_timing(run: Path) -> pd.DataFrame:
    frame = pd.read_csv(run / RUN_FILES["history"], dtype=str, keep_default_na=False)
    return frame.drop(columns=[c for c in frame.columns if c.startswith("seconds_")])


def params_of(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / RUN_FILES["model"], map_location="cpu", weights_only=True)["params"]


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(CONTROLS))
def test_sigkilled_method_run_resumes_bitwise_identical(method, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    ref = subprocess.Popen(train_cmd(reference, method), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    process = subprocess.Popen(train_cmd(killed, method), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        try:
            deadline = time.monotonic() + 60
            while not (killed / CHECKPOINT).exists():
                assert process.poll() is None, "training ended before writing a checkpoint"
                assert time.monotonic() < deadline, "no checkpoint after 60 s"
                time.sleep(0.02)
            delay = random.uniform(0.0, 0.5)
            time.sleep(delay)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL, f"the run finished before the kill (delay {delay:.2f} s)"

        config = ExperimentConfig.from_dict(
            {
                "dataset": "MNIST5k",
                "control": CONTROLS[method],
                **{k: int(v) if v.isdigit() else v for k, v in (s.split("=") for s in SETTINGS)},
                **{
                    k: float(v) if k == "feddyn_alpha" else v
                    for k, v in (s.split("=") for s in method_settings(method))
                },
            }
        )
        blob = read_checkpoint(killed / CHECKPOINT, config)
        stopped_at = int(blob["round"])
        assert 1 <= stopped_at < ROUNDS
        if method == "fedecover":
            # one client of a quarter width per round: after round r, (4 - r) quarters of every pool are left,
            # distinct units of the space
            pools = blob["method_state"]["pools"]
            assert sorted(pools) == sorted(SIZES)
            for key, size in SIZES.items():
                assert len(pools[key]) == size - stopped_at * size // 4, (key, stopped_at)
                assert len(set(pools[key])) == len(pools[key]) and set(pools[key]) <= set(range(size))
        else:
            assert "method_state" not in blob  # FD and DepthFL are stateless: everything from the seed
        if method == "depthfl+feddyn":  # each client sampled so far has its h_k, and the server its h
            assert 2 <= len(blob["client_state"]["feddyn_h"]) <= 4 and set(blob["server_state"]) == {"h"}

        done = subprocess.run(train_cmd(killed, method), capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"resuming {killed} from round" in (killed / "train.log").read_text()
    finally:
        _, err = ref.communicate(timeout=120)
    assert ref.returncode == 0, err.decode()

    want, got = params_of(reference), params_of(killed)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), f"{name} differs after kill at round {stopped_at} (+{delay:.2f} s)"
    pd.testing.assert_frame_equal(history_without_timing(killed), history_without_timing(reference))
    assert len(history_without_timing(killed)) == ROUNDS

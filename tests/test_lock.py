"""One writer per run folder: a second writer is refused naming the holder; a stale lock is replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from heterofl.errors import HeteroFLError
from heterofl.lock import LOCK_NAME, run_lock


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_lock_is_held_inside_and_removed_after(tmp_path):
    with run_lock(tmp_path / "run") as path:
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with run_lock(tmp_path / "run"):  # reentrant within one process
            pass
        assert path.exists()
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_live_holder_is_named_in_one_line(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / LOCK_NAME).write_text(
            json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "started": "2026-11-27 10:00:00 UTC"})
        )
        with pytest.raises(HeteroFLError) as error, run_lock(folder):
            pass
        message = str(error.value)
        assert f"pid {sleeper.pid} on host {socket.gethostname()} since 2026-11-27 10:00:00 UTC" in message
        assert message.startswith("out: ") and "\n" not in message
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stale_lock_of_a_gone_process_is_replaced(tmp_path, caplog):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "x"}))
    with run_lock(folder) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text


def test_lock_from_another_host_is_refused_with_what_to_do(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node-17", "started": "x"}))
    expected = r"locked by pid 1 on host node-17 since x; if that job is gone, delete"
    with pytest.raises(HeteroFLError, match=expected), run_lock(folder):
        pass


def test_out_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HeteroFLError, match="is under a file"), run_lock(tmp_path / "file" / "run"):
        pass


@pytest.mark.slow
def test_two_train_processes_on_one_folder(tmp_path):
    """The second writer is refused in one line naming the first; after a kill -9 the next run resumes."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "heterofl", "train", "--dataset", "MNIST5k", "--control", "1_4_0.5_iid_fix_e1_bn_1_1"]
    argv += ["--set", "local_epochs=1", "--set", "eval_rates=global", "--threads", "1", "--quiet", "--out", str(out)]
    first = subprocess.Popen([*argv, "--set", "rounds=200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "first writer did not start"
            time.sleep(0.2)
        second = subprocess.run([*argv, "--set", "rounds=200"], capture_output=True, text=True, timeout=120)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 2, second.stderr
        assert len(lines) == 1 and f"is being written by pid {first.pid} on host" in lines[0], second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / LOCK_NAME).exists(), "a killed writer leaves its lock behind"
    third = subprocess.Popen([*argv, "--set", "rounds=200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while "resuming" not in (out / "train.log").read_text():
            assert third.poll() is None, third.stderr.read().decode()
            assert time.monotonic() < deadline, "the rerun did not resume"
            time.sleep(0.2)
    finally:
        third.send_signal(signal.SIGKILL)
        third.wait()
    log_text = (out / "train.log").read_text()
    assert f"replacing a stale lock of pid {first.pid}" in log_text

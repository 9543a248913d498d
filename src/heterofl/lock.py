"""One writer per run folder: a lock file naming its holder, with stale locks recognised after a crash.

Two ``heterofl train`` into the same folder would interleave their logs and overwrite each other's
results while both report success. The lock is ``RUN/.lock``, created atomically (``O_CREAT | O_EXCL``) and
holding the writer's pid, host, process start time and the wall-clock start. A second writer is refused
in one line naming the holder. A lock left by a process that no longer exists on this host (killed,
crashed, machine rebooted) is stale: it is replaced, with a log line saying so, so a killed run resumes
by itself. A lock held from another host cannot be checked from here and is refused with what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from heterofl.errors import HeteroFLError

LOCK_NAME = ".lock"
log = logging.getLogger(__name__)


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), so a recycled pid is not mistaken for the holder."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict) -> bool:
    pid = int(holder.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def _describe(holder: dict) -> str:
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}"


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration; reentrant within one process."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HeteroFLError("out", f"{folder} is under a file, not a folder", "a folder path") from None
    except PermissionError:
        raise HeteroFLError("out", f"{folder} cannot be created (permission denied)", "a writable folder") from None
    except OSError as error:
        raise HeteroFLError("out", f"{folder} cannot be created ({error.strerror})", "a writable folder") from None
    path = folder / LOCK_NAME
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "process_start": _process_start(os.getpid()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                continue  # vanished or half-written while we looked: try again
            if holder.get("pid") == me["pid"] and holder.get("host") == me["host"]:
                yield path  # this process already holds it
                return
            if holder.get("host") != me["host"]:
                raise HeteroFLError(
                    "out",
                    f"{folder} is locked by {_describe(holder)}; if that job is gone, delete {path}",
                    "one writer per run folder",
                ) from None
            if _alive(holder):
                raise HeteroFLError(
                    "out", f"{folder} is being written by {_describe(holder)}", "one writer per run folder"
                ) from None
            log.warning(
                "replacing a stale lock of %s (that process is gone: it crashed or was killed)", _describe(holder)
            )
            path.unlink(missing_ok=True)
            continue
        except PermissionError:
            raise HeteroFLError("out", f"{folder} is not writable (permission denied)", "a writable folder") from None
        except OSError as error:
            raise HeteroFLError("out", f"{folder} is not writable ({error.strerror})", "a writable folder") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        try:
            yield path
        finally:
            if (_read(path) or {}).get("pid") == me["pid"]:
                path.unlink(missing_ok=True)
        return
    raise HeteroFLError("out", f"{folder}: cannot take the lock {path}", "one writer per run folder")


def _read(path: Path) -> dict | None:
    """The lock's holder; None when the lock is gone. A file that is not a holder's record (garbage, another
    shape, a pid that is not a process id) reads as a holder that is gone, so the lock counts as stale."""
    unreadable = {"pid": -1, "host": socket.gethostname(), "started": "unknown (unreadable lock file)"}
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return unreadable
    if not isinstance(holder, dict):
        return unreadable
    pid, started = holder.get("pid"), holder.get("process_start")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return unreadable
    if not isinstance(holder.get("host"), str) or not (started is None or isinstance(started, str)):
        return unreadable
    return holder

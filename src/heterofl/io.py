"""Atomic file output: a reader (or Snakemake) never sees a half-written file.

Every writer goes to a temporary file in the target's folder, fsyncs it and renames it over the target,
so a kill, a full disk or an exception leaves either the old file or the new one, never a torso.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from heterofl.errors import mark_output_error


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:  # disk full, read-only, permissions: the CLI names ``path`` in one line
        mark_output_error(error, path)
        raise
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should be as readable as open() would make them
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as error:
        mark_output_error(error, path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_yaml(path: str | Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def save_torch(path: str | Path, obj: Any) -> None:
    """``torch.save`` atomically, streamed into the temporary file rather than through an in-memory buffer:
    no second copy in memory, and faster for large checkpoints (FedDyn's client states, measured by
    ``benchmarks/feddyn_checkpoint.py``); a full disk still raises OSError, which names ``path``."""
    import torch  # on demand: the report path runs without PyTorch

    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(obj, handle)

"""One exception type for every bad input, so the CLI can print it as one line without a traceback."""

from __future__ import annotations

import errno
import os


class HeteroFLError(ValueError):
    """A user-facing error that names the offending field and what is allowed there."""

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.allowed = allowed
        message = f"{field}: {problem}"
        if allowed:
            message += f" (allowed: {allowed})"
        super().__init__(message)


class RunFailed(RuntimeError):
    """Training stopped for a reason the user must see (divergence); the last good checkpoint is kept.

    Defined here, not in ``runner``, so the CLI can catch it without importing PyTorch."""


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
"""Failures of the disk rather than of the program: full disk or quota, read-only filesystem, permissions."""
_ALWAYS_WRITES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def mark_output_error(error: OSError, path: str | os.PathLike) -> OSError:
    """Name the output ``path`` (not its temporary file) in a failed write; returns ``error`` for ``raise``."""
    if error.errno in OUTPUT_ERRNOS:
        error.filename = os.fspath(path)
        error.heterofl_output = True
    return error


def os_error_line(error: OSError) -> str | None:
    """``cannot write PATH: no space left on device (errno 28)``, or None for an error that is not the disk's."""
    if error.errno not in OUTPUT_ERRNOS:
        return None
    verb = "write" if getattr(error, "heterofl_output", False) or error.errno in _ALWAYS_WRITES else "access"
    cause = os.strerror(error.errno)
    cause = cause[:1].lower() + cause[1:]
    where = f" {error.filename}" if error.filename else ""
    return f"cannot {verb}{where}: {cause} (errno {error.errno})"

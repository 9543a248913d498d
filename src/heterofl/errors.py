"""One exception type for every bad input, so the CLI can print it as one line without a traceback."""

from __future__ import annotations


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

"""The grammar of a data split mode (``iid``, ``non-iid-K``, ``dirichlet-A``, ``none``).

It lives with the data because the partitioner checks it; the configuration imports it from here.
"""

from __future__ import annotations

import re

from heterofl.errors import HeteroFLError

SPLIT_PATTERN = re.compile(r"^(iid|none|non-iid-(\d+)|dirichlet-(\d+(\.\d+)?|\.\d+))$")
SPLIT_ALLOWED = "iid, non-iid-K (K >= 1 labels per client), dirichlet-A (A > 0), none"


def validate_split_mode(text: str) -> str:
    """Check a data split mode string; returns it unchanged."""
    match = SPLIT_PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise HeteroFLError("data_split_mode", f"{text!r} is not a split mode", SPLIT_ALLOWED)
    if match.group(2) is not None and int(match.group(2)) < 1:
        raise HeteroFLError("data_split_mode", f"{text!r} needs K >= 1", SPLIT_ALLOWED)
    if match.group(3) is not None and float(match.group(3)) <= 0:
        raise HeteroFLError("data_split_mode", f"{text!r} needs A > 0", SPLIT_ALLOWED)
    return text

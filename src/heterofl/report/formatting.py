"""Numbers as the paper prints them, so our tables can be read side by side with its Table 1."""

from __future__ import annotations

import math

MISSING = "-"


def _absent(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_params(value: float | None) -> str:
    """``9.6 M`` from a million up, ``801 K`` below (paper Table 1)."""
    if _absent(value):
        return MISSING
    return f"{value / 1e6:.1f} M" if value >= 1e6 else f"{value / 1e3:.0f} K"


def fmt_flops(value: float | None) -> str:
    """``330.2 M``: FLOPs always in millions with one decimal (paper Table 1)."""
    return MISSING if _absent(value) else f"{value / 1e6:.1f} M"


def fmt_fixed(value: float | None, digits: int = 2) -> str:
    """Space (MB), Ratio and shares: plain fixed-point."""
    return MISSING if _absent(value) else f"{value:.{digits}f}"


def fmt_mean_std(mean: float | None, std: float | None, n: int | None = None, digits: int = 2) -> str:
    """``mean ± std`` over seeds; the mean alone when only one seed exists (no std to report)."""
    if _absent(mean):
        return MISSING
    if _absent(std) or (n is not None and n < 2):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"

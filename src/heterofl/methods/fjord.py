"""FjORD (Horváth et al., NeurIPS 2021, https://arxiv.org/abs/2102.13451): ordered dropout.

A client of rate r is a tier with p_max = r and holds the leading units (nested prefixes, as HeteroFL).
For **every local batch** it draws p uniformly from the rates at or below p_max and trains only the
leading ``ceil(p K)`` units of every group (the rest of its submodel gets no gradient; SGD's weight
decay and momentum still act on it, as in a PyTorch optimizer over the whole submodel). The candidate
rates are this harness's rate grid a..e (1, 1/2, ..., 1/16) at or below p_max. Aggregation is
HeteroFL's count-based mean over the clients whose tier covers an entry. The original uses no Scaler:
it is off unless the run sets ``fjord_scaler: true``. Self-distillation from the p_max model is not
implemented.
"""

from __future__ import annotations

from typing import Any

from heterofl.methods.base import ClientSlot
from heterofl.rates import RATE_OF_LETTER
from heterofl.selection import Selection, Units


class FjORD:
    name = "fjord"

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        return [{key: Units.prefix(w) for key, w in slot.widths.items()} for slot in slots], state

    def step_rates(self, rate: float) -> tuple[float, ...]:
        return tuple(r for r in sorted(RATE_OF_LETTER.values(), reverse=True) if r <= rate)

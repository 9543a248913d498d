"""FedRolex (Alam, Liu, Yan, Zhang, NeurIPS 2022, https://arxiv.org/abs/2212.01548): a rolling window.

At round j (counted from 0, so the first round equals HeteroFL's) a client of width w holds units
``(j + i) mod K`` for ``i < w`` of every group of K units: the window moves by one unit per round and is
the same for every client of the round, so a smaller window is a prefix of a larger one. Head-wise
dimensions roll within each head. Over K rounds every unit is trained, which is what lets FedRolex
train a global model larger than any client's (``model_mode`` with a zero proportion on the global
letter, e.g. ``a0-b1-c1-d1-e1``).

The original code evaluates with test-batch BN statistics; here, as for every method, static BN is
computed for each evaluated submodel, so the comparison with HeteroFL is on equal terms.
"""

from __future__ import annotations

from typing import Any

from heterofl.methods.base import ClientSlot, StaticWidthMethod
from heterofl.selection import Selection, Units


class FedRolex(StaticWidthMethod):
    name = "fedrolex"

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        offset = round_ - 1
        return [{key: Units.window(offset, w, sizes[key]) for key, w in slot.widths.items()} for slot in slots], state

"""HeteroFL (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264): the leading units, always.

A client of rate r holds units 0 .. ceil(r K) - 1 of every group of K units, in every round; the
outer units of the global model are trained only by the clients of the largest rate.
"""

from __future__ import annotations

from typing import Any

from heterofl.methods.base import ClientSlot, StaticWidthMethod
from heterofl.selection import Selection, Units


class HeteroFL(StaticWidthMethod):
    name = "heterofl"

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        return [{key: Units.prefix(w) for key, w in slot.widths.items()} for slot in slots], state

"""Federated Dropout (Caldas, Konečný, McMahan, Talwalkar 2018, https://arxiv.org/abs/1812.07210).

Every round, every sampled client of width w gets a fresh, uniformly random w-subset of every group of
units, drawn from a generator seeded by (run seed, round, client): reproducible from the seed and
unaffected by a resume.
"""

from __future__ import annotations

from typing import Any

from heterofl.methods.base import ClientSlot, StaticWidthMethod, generator_for, random_subset
from heterofl.selection import Selection, Units

SALT = 0xFD


class FederatedDropout(StaticWidthMethod):
    name = "fd"

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        selections = []
        for slot in slots:
            generator = generator_for(seed, round_, slot.user, SALT)
            selections.append(
                {
                    key: Units.subset(random_subset(sizes[key], w, generator), sizes[key])
                    for key, w in sorted(slot.widths.items())
                }
            )
        return selections, state

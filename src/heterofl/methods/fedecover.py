"""FedEcover (ICDE 2025; code: github.com/junesnow86/FedEcover): random units that cover the model.

Each group of units keeps a pool of the units not yet handed out in the current cycle. A client of
width w draws its units at random, without replacement, from the pool; when the pool runs out, the
client takes what is left and a new cycle starts with a pool of *every* unit, as FedEcover's code
refills it: the client draws the rest from it (not the units it already holds), and the units it took
from the old pool stay in the new one. So every unit is handed out exactly once per cycle, and at any
moment two units' counts differ by at most one. The pools carry over between rounds and are
part of the run's checkpoint; draws come from a generator seeded by (run seed, round), in the order the
clients were sampled. (FedEcover's optional decaying global step size is not applied.)
"""

from __future__ import annotations

from typing import Any

import torch

from heterofl.methods.base import ClientSlot, StaticWidthMethod, generator_for
from heterofl.selection import Selection, Units

SALT = 0xEC


class FedEcover(StaticWidthMethod):
    name = "fedecover"

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        generator = generator_for(seed, round_, SALT)
        pools = {key: list(state.get("pools", {}).get(key, range(size))) for key, size in sorted(sizes.items())}
        selections = []
        for slot in slots:
            selection = {}
            for key in sorted(slot.widths):
                selection[key] = Units.subset(
                    draw_from_pool(pools, key, slot.widths[key], sizes[key], generator), sizes[key]
                )
            selections.append(selection)
        return selections, {"pools": pools}


def draw_from_pool(
    pools: dict[str, list[int]], key: str, width: int, size: int, generator: torch.Generator
) -> list[int]:
    """Take ``width`` units from ``pools[key]`` at random (refilling it when empty); updates the pool."""
    pool = pools[key]
    taken: list[int] = []
    while len(taken) < width:
        if not pool:  # a new cycle: every unit, those this client just took from the old pool included
            pool = list(range(size))
        held = set(taken)
        candidates = [u for u in pool if u not in held]
        need = width - len(taken)
        order = torch.randperm(len(candidates), generator=generator).tolist()
        picked = [candidates[i] for i in order[:need]]
        taken += picked
        chosen = set(picked)
        pool = [u for u in pool if u not in chosen]
    pools[key] = pool
    return taken

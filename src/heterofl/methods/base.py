"""What an extraction method is: a rule that turns (round, client, rate, seeded generator) into a selection.

Every method of this package trains, aggregates, applies static BN and is evaluated by the same code
(``federation.py``); a method only decides *which units* each sampled client holds (and, for FjORD, which
nested width every local batch trains). Methods are pure: their evolving state (FedEcover's pools) is a
plain value returned with the selections and stored in the run's checkpoint, and every random draw comes
from a generator seeded by (run seed, round[, client]), so a resumed run draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from heterofl.selection import Selection, Units


@dataclass(frozen=True)
class ClientSlot:
    """A sampled client before it gets its units: who, at which rate, with which per-space widths."""

    user: int
    rate: float
    widths: dict[str, int]
    """Units per unit space that a model of ``rate`` holds (``selection.space_widths``)."""


class Method(Protocol):
    name: str
    """Its :class:`~heterofl.methods.registry.MethodSpec` (label, Scaler default, ...) is in the method table."""

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        """One selection per slot for ``round_`` (1-based) and the method's state after the round."""
        ...

    def step_rates(self, rate: float) -> tuple[float, ...]:
        """Rates a client of ``rate`` may train per local batch (FjORD); empty: always its own rate."""
        ...


class StaticWidthMethod:
    """A method whose clients train their whole selection at every step (all but FjORD)."""

    name = ""

    def step_rates(self, rate: float) -> tuple[float, ...]:
        return ()


class WholeLayersMethod(StaticWidthMethod):
    """A method whose clients hold every unit of every layer they have (FIARSE masks entries of the dense model;
    the depth methods' clients have fewer layers, each whole)."""

    def select(
        self, round_: int, slots: list[ClientSlot], sizes: dict[str, int], seed: int, state: dict[str, Any]
    ) -> tuple[list[Selection], dict[str, Any]]:
        return [{key: Units.prefix(size) for key, size in sizes.items()} for _ in slots], state


def generator_for(*key: int) -> torch.Generator:
    """A torch generator seeded from a well-mixed hash of ``key`` (run seed, round, client, salt)."""
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(seed)


def random_subset(size: int, width: int, generator: torch.Generator) -> list[int]:
    """``width`` distinct units of ``range(size)``, uniformly at random."""
    return torch.randperm(size, generator=generator)[:width].tolist()

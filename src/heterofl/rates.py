"""Model rates and the ``model_mode`` grammar (HeteroFL, https://arxiv.org/abs/2010.01264, section 4).

A model mode such as ``a2-b8`` says which width multipliers ("rates") exist and in which proportions.
The first letter is the global model. A zero proportion on the global letter (``a0-b1-c1``) makes a
global model larger than every client's, FedRolex's headline setting (Alam et al., NeurIPS 2022,
https://arxiv.org/abs/2212.01548): no client trains at rate a, the server model still has rate a.
``fix`` gives each client one rate for the whole run; ``dynamic``
redraws every client's rate every round.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from heterofl.errors import HeteroFLError

RATE_OF_LETTER: dict[str, float] = {"a": 1.0, "b": 0.5, "c": 0.25, "d": 0.125, "e": 0.0625}
LETTER_OF_RATE: dict[float, str] = {rate: letter for letter, rate in RATE_OF_LETTER.items()}
SPLIT_MODES = ("fix", "dynamic")
_ITEM = re.compile(r"^([a-e])(\d*)$")


@dataclass(frozen=True)
class ModelMode:
    """A parsed ``model_mode``: letters with integer proportions, largest rate first."""

    letters: tuple[str, ...]
    proportions: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> ModelMode:
        """Parse ``a1-b1-c1``/``a2-b8``; bare ``a-b-c`` means equal proportions (reference issue #1)."""
        allowed = "'-'-joined items <letter a..e><integer proportion>, e.g. a1, a2-b8, a-b-c"
        if not isinstance(text, str) or not text:
            raise HeteroFLError("model_mode", f"{text!r} is empty", allowed)
        letters, proportions = [], []
        for item in text.split("-"):
            match = _ITEM.match(item)
            if match is None:
                raise HeteroFLError("model_mode", f"item {item!r} of {text!r} is not valid", allowed)
            letters.append(match.group(1))
            proportions.append(int(match.group(2)) if match.group(2) else 1)
        digits = [bool(_ITEM.match(i).group(2)) for i in text.split("-")]
        if any(digits) and not all(digits):
            raise HeteroFLError("model_mode", f"{text!r} mixes items with and without proportions", allowed)
        if len(set(letters)) != len(letters):
            raise HeteroFLError("model_mode", f"{text!r} repeats a letter", allowed)
        if any(p <= 0 for p in proportions[1:]) or proportions[0] < 0 or sum(proportions) == 0:
            raise HeteroFLError(
                "model_mode",
                f"{text!r} has a zero proportion",
                "positive integers; only the global (first) letter may have 0 (a global model no client holds)",
            )
        rates = [RATE_OF_LETTER[letter] for letter in letters]
        if rates[0] != max(rates):
            raise HeteroFLError(
                "model_mode", f"{text!r} does not list its largest rate first", "the global (largest) rate first"
            )
        return cls(tuple(letters), tuple(proportions), text)

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(RATE_OF_LETTER[letter] for letter in self.letters)

    @property
    def global_rate(self) -> float:
        return self.rates[0]

    @property
    def probabilities(self) -> tuple[float, ...]:
        total = sum(self.proportions)
        return tuple(p / total for p in self.proportions)

    def fixed_rates(self, num_users: int) -> list[float]:
        """The reference's ``fix`` assignment: blocks in order, the remainder padded with the last rate."""
        k = num_users // sum(self.proportions)
        rates: list[float] = []
        for rate, proportion in zip(self.rates, self.proportions, strict=True):
            rates += [rate] * (proportion * k)
        rates += [self.rates[-1]] * (num_users - len(rates))
        return rates

    def draw_dynamic_rates(self, num_users: int, generator: torch.Generator) -> list[float]:
        """Redraw every client's rate i.i.d. from the proportions (the reference's ``dynamic``)."""
        import torch  # on demand: parsing modes (the report path) needs no PyTorch

        probs = torch.tensor(self.probabilities, dtype=torch.float64)
        picks = torch.multinomial(probs, num_users, replacement=True, generator=generator)
        return [self.rates[i] for i in picks.tolist()]

    def mean_ratio(self, stat_of_letter: dict[str, float]) -> float:
        """Proportion-weighted mean of a per-letter statistic (the paper tables' combination rows)."""
        total = sum(self.proportions)
        return sum(p * stat_of_letter[x] for x, p in zip(self.letters, self.proportions, strict=True)) / total


def width(base: int, rate: float) -> int:
    """Hidden width of a layer of ``base`` channels at ``rate``: ``ceil(rate * base)`` as the reference."""
    return int(math.ceil(rate * base))


def letters_up_to(global_rate: float) -> list[str]:
    """Every rate letter whose rate is at most ``global_rate``, largest first: the submodels to evaluate."""
    return [letter for letter, rate in RATE_OF_LETTER.items() if rate <= global_rate]

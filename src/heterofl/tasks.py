"""What a local step and an evaluation pass look like for each kind of data.

``ImageTask`` (MNIST, CIFAR10, CIFAR100) and ``MaskedLMTask`` (WikiText2) share one interface so that the
engines, static BN and evaluation never branch on the dataset. All data lives on the training device as tensors;
a local step is an index batch drawn from the client's own generator, so every engine sees the same
data order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from heterofl.data import Dataset, augment_batch
from heterofl.data.constants import NORMALIZATION
from heterofl.data.registry import is_language
from heterofl.errors import HeteroFLError
from heterofl.models import masked_cross_entropy

MASK_PROBABILITY = 0.15
BPTT = 64


@dataclass(frozen=True)
class Step:
    """One local step: which training rows/images, and (language model) which column window."""

    rows: torch.Tensor
    start: int = 0


class Task(Protocol):
    num_classes: int

    def local_steps(
        self, indices: torch.Tensor, epochs: int, batch_size: int, generator: torch.Generator
    ) -> list[Step]: ...

    def batch(self, step: Step, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, label_mask: torch.Tensor | None, reduction: str = "mean"
    ) -> torch.Tensor: ...


class ImageTask:
    """Classification on an in-memory image tensor; CIFAR augmentation is drawn per batch."""

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        self.device = device
        self.train_x = dataset.train_x.to(device)
        self.train_y = dataset.train_y.to(device)
        self.test_x = dataset.test_x.to(device)
        self.test_y = dataset.test_y.to(device)
        self.num_classes = dataset.num_classes
        self.augment = dataset.augment
        if self.augment and dataset.name not in NORMALIZATION:
            problem = f"{dataset.name!r} is augmented but has no normalisation statistics"
            raise HeteroFLError("dataset", problem, ", ".join(NORMALIZATION))
        # the padding of a crop is a black pixel normalised with the dataset's own statistics
        self.mean, self.std = NORMALIZATION.get(dataset.name, ((), ()))

    def local_steps(
        self, indices: torch.Tensor, epochs: int, batch_size: int, generator: torch.Generator
    ) -> list[Step]:
        steps = []
        for _ in range(epochs):
            order = indices[torch.randperm(len(indices), generator=generator)]
            steps += [Step(rows.to(self.device)) for rows in order.split(batch_size)]
        return steps

    def batch(self, step: Step, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.train_x[step.rows]
        if self.augment:
            x = augment_batch(x, generator, self.mean, self.std)
        return x, self.train_y[step.rows]

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, label_mask: torch.Tensor | None, reduction: str = "mean"
    ) -> torch.Tensor:
        return masked_cross_entropy(logits, targets, label_mask, reduction)

    def statistics_inputs(self) -> torch.Tensor:
        """All training images, for static BN (the reference pools the whole training set)."""
        return self.train_x

    def test_batches(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(zip(self.test_x.split(batch_size), self.test_y.split(batch_size), strict=True))


class MaskedLMTask:
    """Masked language modelling on batchified token rows (spec sections 2-3): 15 % of inputs -> [MASK]."""

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        self.device = device
        self.train_rows = dataset.train_x.to(device)
        self.test_rows = dataset.test_x.to(device)
        self.num_classes = dataset.num_classes

    def local_steps(
        self, indices: torch.Tensor, epochs: int, batch_size: int, generator: torch.Generator
    ) -> list[Step]:
        rows = indices.to(self.device)
        windows = math.ceil(self.train_rows.shape[1] / BPTT)
        return [Step(rows, w * BPTT) for _ in range(epochs) for w in range(windows)]

    def _mask(self, tokens: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        draw = torch.rand(tokens.shape, generator=generator).to(tokens.device)
        return tokens.masked_fill(draw < MASK_PROBABILITY, self.num_classes)

    def batch(self, step: Step, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.train_rows[step.rows, step.start : step.start + BPTT]
        return self._mask(tokens, generator), tokens

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, label_mask: torch.Tensor | None, reduction: str = "mean"
    ) -> torch.Tensor:
        return masked_cross_entropy(logits, targets, label_mask, reduction)

    def test_batches(self, batch_size: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Test windows with a fixed random masking, so evaluation is repeatable (the reference's was not)."""
        generator = torch.Generator().manual_seed(seed)
        out = []
        for start in range(0, self.test_rows.shape[1], BPTT):
            tokens = self.test_rows[:, start : start + BPTT]
            out.append((self._mask(tokens, generator), tokens))
        return out


def make_task(dataset: Dataset, device: torch.device) -> ImageTask | MaskedLMTask:
    return MaskedLMTask(dataset, device) if is_language(dataset.name) else ImageTask(dataset, device)

"""Local client training, one client at a time: the reference behaviour and the ground truth for engines.

Every selected client starts from its extracted submodel, builds a fresh SGD (momentum 0.9, weight decay
5e-4) at the round's learning rate, clips the gradient norm at 1 every step and trains its local epochs
with masked cross-entropy (spec section 2). Its data order, CIFAR augmentation and language-model masking
come from its own generator, seeded by (seed, round, client), so any engine reproduces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from heterofl.aggregation import Aggregator
from heterofl.submodel import Params, extract, load_into, parameters_of
from heterofl.tasks import Step, Task


@dataclass(frozen=True)
class LocalSettings:
    lr: float
    momentum: float
    weight_decay: float
    clip_norm: float
    epochs: int
    batch_size: int
    use_mask: bool


@dataclass(frozen=True)
class ClientJob:
    """One selected client in one round."""

    user: int
    rate: float
    indices: torch.Tensor
    labels_held: torch.Tensor
    seed: int

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


@dataclass
class TrainMetrics:
    """Running sums over every local step of every client (the reference's train/Local-* metrics)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    samples: int = 0
    steps: int = 0
    per_step: list = field(default_factory=list)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        n = targets.numel()
        self.per_step.append(torch.stack([loss.detach() * n, (logits.argmax(-1) == targets).sum().float()]))
        self.samples += n
        self.steps += 1

    def summary(self) -> dict[str, float]:
        if self.per_step:
            total = torch.stack(self.per_step).sum(0).tolist()
            self.loss_sum, self.correct = self.loss_sum + total[0], self.correct + total[1]
            self.per_step = []
        n = max(self.samples, 1)
        return {"train_loss": self.loss_sum / n, "train_accuracy": 100.0 * self.correct / n}


def client_seed(seed: int, round_: int, user: int) -> int:
    """A well-mixed 63-bit seed per (run seed, round, client)."""
    return int(np.random.SeedSequence([seed, round_, user]).generate_state(2, dtype=np.uint64)[0] >> 1)


def client_schedule(task: Task, job: ClientJob, settings: LocalSettings) -> tuple[list[Step], torch.Generator]:
    generator = job.generator()
    steps = task.local_steps(job.indices, settings.epochs, settings.batch_size, generator)
    return steps, generator


def train_one_client(
    model: nn.Module, task: Task, job: ClientJob, settings: LocalSettings, metrics: TrainMetrics
) -> Params:
    """Train ``model`` (already holding the client's submodel) in place and return its parameters."""
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    label_mask = job.labels_held if settings.use_mask else None
    steps, generator = client_schedule(task, job, settings)
    for step in steps:
        inputs, targets = task.batch(step, generator)
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = task.loss(logits, targets, label_mask)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        optimizer.step()
        metrics.add(loss, logits, targets)
    return parameters_of(model)


class SequentialEngine:
    """Trains the round's clients one after another, each in a model of its own rate."""

    name = "sequential"

    def __init__(self, model_for_rate, task: Task) -> None:
        self.model_for_rate = model_for_rate
        self.task = task

    def run(
        self, jobs: list[ClientJob], global_params: Params, layout, settings: LocalSettings, aggregator: Aggregator
    ) -> dict[str, float]:
        metrics = TrainMetrics()
        for job in jobs:
            model = self.model_for_rate(job.rate)
            load_into(model, extract(global_params, layout, model.widths))
            trained = train_one_client(model, self.task, job, settings, metrics)
            if not all(torch.isfinite(v).all() for v in trained.values()) or not np.isfinite(
                metrics.summary()["train_loss"]
            ):
                raise DivergenceError(job.user)
            aggregator.add({k: v.unsqueeze(0) for k, v in trained.items()}, model.widths, job.labels_held.unsqueeze(0))
        return metrics.summary()


class DivergenceError(RuntimeError):
    """A client's loss or parameters became NaN or infinite."""

    def __init__(self, user: int | None, round_: int | None = None) -> None:
        self.user = user
        self.round = round_
        who = f"client {user}" if user is not None else "a client"
        super().__init__(f"{who} diverged (NaN or infinite loss/parameters)")

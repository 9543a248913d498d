"""Local client training, one client at a time: the reference behaviour and the ground truth for engines.

Every selected client starts from its extracted submodel, builds a fresh SGD (momentum 0.9, weight decay
5e-4) at the round's learning rate, clips the gradient norm at 1 every step and trains its local epochs
with masked cross-entropy (HeteroFL, https://arxiv.org/abs/2010.01264, section 4). Its data order, CIFAR
augmentation and language-model masking come from its own generator, seeded by (seed, round, client), so
any engine reproduces them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from heterofl.feddyn import add_regularizer_gradient_
from heterofl.methods.fiarse import MagnitudeMask
from heterofl.models.exits import exit_loss, prediction_logits
from heterofl.selection import Selection, prefix_selection
from heterofl.submodel import Params, extract, load_into, parameters_of
from heterofl.tasks import Step, Task

STEP_RATE_SALT = 0xF0D


@dataclass(frozen=True)
class LocalSettings:
    lr: float
    momentum: float
    weight_decay: float
    clip_norm: float
    epochs: int
    batch_size: int
    use_mask: bool
    autocast: torch.dtype | None = None
    """bf16 for ``precision: bf16`` (forward and loss under ``torch.autocast``); None: the tensors' own dtype."""
    distill_weight: float = 0.0
    """DepthFL's weight of mutual self-distillation among a client's exits this round (``models/exits.py``)."""
    feddyn_alpha: float = 0.0
    """FedDyn's α (``feddyn.py``): every job then carries its ``feddyn_h``; 0: no regulariser."""

    def autocast_context(self, device: torch.device) -> torch.autocast:
        return torch.autocast(device.type, dtype=self.autocast, enabled=self.autocast is not None)

    def loss(self, task: Task, output, targets: torch.Tensor, label_mask: torch.Tensor | None) -> torch.Tensor:
        return local_loss(task, output, targets, label_mask, self.distill_weight)


def local_loss(
    task: Task, output, targets: torch.Tensor, label_mask: torch.Tensor | None, distill_weight: float
) -> torch.Tensor:
    """The task's loss, or DepthFL's over several exits when the model returns a tuple of exit logits."""
    if isinstance(output, tuple):
        return exit_loss(output, targets, label_mask, distill_weight)
    return task.loss(output, targets, label_mask)


@dataclass(frozen=True)
class ClientJob:
    """One selected client in one round."""

    user: int
    rate: float
    indices: torch.Tensor
    labels_held: torch.Tensor
    seed: int
    selection: Selection | None = None
    """Which units of the global model the client holds (None: HeteroFL's leading units)."""
    step_rates: tuple[float, ...] = ()
    """FjORD: the rates a local batch may train, drawn uniformly per batch; empty: always ``rate``."""
    keep_fraction: float | None = None
    """FIARSE: the share of the dense model's maskable entries the client keeps by magnitude; None: no mask."""
    feddyn_h: Params | None = None
    """FedDyn: the client's state h_k for every parameter it holds (``feddyn.py``); None: no FedDyn."""

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def rate_schedule(self, steps: int) -> list[float] | None:
        """The rate of every local step (FjORD), from the client's own seeded generator; None if fixed."""
        if not self.step_rates:
            return None
        generator = torch.Generator().manual_seed(self.seed ^ STEP_RATE_SALT)
        picks = torch.randint(len(self.step_rates), (steps,), generator=generator).tolist()
        return [self.step_rates[i] for i in picks]


TRAIN_COLUMNS = ("train_loss", "train_accuracy", "train_accuracy_masked")
"""The history columns of local training (:class:`TrainMetrics`)."""


@dataclass
class TrainMetrics:
    """Running sums over every local step of every client (the reference's train/Local-* metrics).

    ``train_accuracy`` counts the argmax over every class; ``train_accuracy_masked`` the argmax of the same masked
    logits the loss sees (HeteroFL's masked cross-entropy, https://arxiv.org/abs/2010.01264 section 3.3), so it
    is the accuracy that goes with ``train_loss``. Both are kept: runs trained before the masked one existed
    (the committed results) keep their ``train_accuracy`` meaning. Without a label mask the two are equal."""

    loss_sum: float = 0.0
    correct: float = 0.0
    correct_masked: float = 0.0
    samples: int = 0
    steps: int = 0
    per_step: list = field(default_factory=list)

    def add(
        self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, label_mask: torch.Tensor | None = None
    ) -> None:
        n = targets.numel()
        correct = (logits.argmax(-1) == targets).sum().float()
        masked = logits if label_mask is None else logits.masked_fill(~label_mask, 0.0)  # as masked_cross_entropy
        correct_masked = (masked.argmax(-1) == targets).sum().float()
        self.per_step.append(torch.stack([loss.detach() * n, correct, correct_masked]).detach())
        self.samples += n
        self.steps += 1

    def summary(self) -> dict[str, float]:
        if self.per_step:
            total = torch.stack(self.per_step).sum(0).tolist()
            self.loss_sum, self.correct = self.loss_sum + total[0], self.correct + total[1]
            self.correct_masked += total[2]
            self.per_step = []
        n = max(self.samples, 1)
        return {
            "train_loss": self.loss_sum / n,
            "train_accuracy": 100.0 * self.correct / n,
            "train_accuracy_masked": 100.0 * self.correct_masked / n,
        }


def client_seed(seed: int, round_: int, user: int) -> int:
    """A well-mixed 63-bit seed per (run seed, round, client)."""
    return int(np.random.SeedSequence([seed, round_, user]).generate_state(2, dtype=np.uint64)[0] >> 1)


def client_schedule(task: Task, job: ClientJob, settings: LocalSettings) -> tuple[list[Step], torch.Generator]:
    generator = job.generator()
    steps = task.local_steps(job.indices, settings.epochs, settings.batch_size, generator)
    return steps, generator


ModelForRate = Callable[[float], nn.Module]


def train_one_client(
    model: nn.Module,
    task: Task,
    job: ClientJob,
    settings: LocalSettings,
    metrics: TrainMetrics,
    model_for_rate: ModelForRate | None = None,
) -> Params:
    """Train ``model`` (already holding the client's submodel) in place and return its parameters.

    With a per-step rate schedule (FjORD) a step of rate p < ``job.rate`` runs the model of rate p
    (``model_for_rate``) on the leading units of ``model``'s parameters: gradients reach only those units.
    With a ``keep_fraction`` (FIARSE) every step runs ``model`` with its small-magnitude weights masked.
    With ``settings.feddyn_alpha`` every step adds FedDyn's regulariser gradient before clipping.
    """
    model.train()
    mask = MagnitudeMask(model, job.keep_fraction) if job.keep_fraction is not None else None
    groups = mask.param_groups(model, settings.weight_decay) if mask is not None else model.parameters()
    optimizer = torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    label_mask = job.labels_held if settings.use_mask else None
    steps, generator = client_schedule(task, job, settings)
    rates = job.rate_schedule(len(steps)) or [job.rate] * len(steps)
    start = {n: p.detach().clone() for n, p in model.named_parameters()} if settings.feddyn_alpha else None
    for step, rate in zip(steps, rates, strict=True):
        inputs, targets = task.batch(step, generator)
        optimizer.zero_grad(set_to_none=True)
        with settings.autocast_context(inputs.device):
            if mask is not None:
                logits = mask.forward(model, inputs)
            elif rate == job.rate:
                logits = model(inputs)
            else:
                logits = _nested_forward(model, model_for_rate(rate), inputs)
            loss = settings.loss(task, logits, targets, label_mask)
        loss.backward()
        if start is not None:
            _add_feddyn_gradients(model, start, job.feddyn_h, settings.feddyn_alpha)
        nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        if mask is not None:
            mask.decay_kept(model, settings.weight_decay)
        optimizer.step()
        metrics.add(loss, prediction_logits(logits).detach(), targets, label_mask)
    return parameters_of(model)


@torch.no_grad()
def _add_feddyn_gradients(model: nn.Module, start: Params, h: Params, alpha: float) -> None:
    for name, param in model.named_parameters():
        if param.grad is None:  # a parameter the loss did not reach still feels the regulariser, as under vmap
            param.grad = torch.zeros_like(param)
        add_regularizer_gradient_(param.grad, param, start[name], h[name], alpha)


def _nested_forward(model: nn.Module, nested: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Run ``nested`` (a smaller rate) on the leading units of ``model``'s parameters, differentiably."""
    views = extract(dict(model.named_parameters()), model.layout, prefix_selection(model.layout, nested.widths))
    nested.train()
    return functional_call(nested, views, (inputs,))


class Engine(Protocol):
    """Trains K clients of one architecture; extraction and aggregation belong to the round, not here."""

    name: str

    def train(
        self, model: nn.Module, local: Params, jobs: list[ClientJob], settings: LocalSettings, metrics: TrainMetrics
    ) -> Params:
        """``local[name]`` is (K, *shape): client i starts from ``local[.][i]``; returns the trained (K, *shape)."""
        ...


class SequentialEngine:
    """Trains the clients one after another in ``model`` (the reference behaviour and the ground truth)."""

    name = "sequential"

    def __init__(self, model_for_rate: ModelForRate, task: Task) -> None:
        self.model_for_rate = model_for_rate
        self.task = task

    def train(
        self, model: nn.Module, local: Params, jobs: list[ClientJob], settings: LocalSettings, metrics: TrainMetrics
    ) -> Params:
        trained = []
        for i, job in enumerate(jobs):
            load_into(model, {name: value[i] for name, value in local.items()})
            out = train_one_client(model, self.task, job, settings, metrics, self.model_for_rate)
            trained.append({k: v.clone() for k, v in out.items()})
        return {name: torch.stack([t[name] for t in trained]) for name in trained[0]}


def check_finite(stacked: Params, jobs: list[ClientJob], metrics: TrainMetrics) -> None:
    """One sync per group: raise DivergenceError naming the first client whose parameters are not finite."""
    finite = torch.stack([torch.isfinite(v.reshape(v.shape[0], -1)).all(1) for v in stacked.values()]).all(0)
    if not bool(finite.all()) or not np.isfinite(metrics.summary()["train_loss"]):
        bad = (~finite).nonzero()
        raise DivergenceError(jobs[int(bad[0]) if len(bad) else 0].user)


class DivergenceError(RuntimeError):
    """A client's loss or parameters became NaN or infinite."""

    def __init__(self, user: int | None, round_: int | None = None) -> None:
        self.user = user
        self.round = round_
        who = f"client {user}" if user is not None else "a client"
        super().__init__(f"{who} diverged (NaN or infinite loss/parameters)")

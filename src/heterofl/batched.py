"""Batched client training: all sampled clients of one rate train at once, one forward/backward per step.

The clients of a rate share one architecture, so their parameters are stacked along a leading client
axis and a step is ``vmap(grad_and_value(functional_call))`` over that axis (the ``torch.func``
ensembling recipe; static BN keeps no running buffers, so BatchNorm works under ``vmap``). Everything
that makes a client a client is kept per client and matches :class:`~heterofl.local_training.SequentialEngine`:

* data order, CIFAR augmentation and language-model masking come from the client's own generator,
  drawn in step order through ``task.batch`` exactly as the sequential engine draws them;
* SGD with momentum and weight decay has torch.optim.SGD's semantics (``d = g + wd*p``; the buffer is
  ``d`` on the first step and ``momentum*buf + d`` after; ``p -= lr*buf``), fresh every round;
* gradient clipping uses each client's own total norm, ``coef = clip / (norm + 1e-6)`` clamped at 1;
* clients whose step counts or batch sizes differ (last partial batch, non-IID sample counts) are
  grouped at every step by the shape of their batch, and each group runs separately: nothing is padded,
  so BatchNorm's batch statistics are the ones the client would see alone.

Dropout (the transformer) draws from the global RNG, so dropout masks differ between the engines
(``randomness="different"``: independent masks per client). With dropout 0 the engines agree to float
tolerance; ``tests/test_engines.py`` checks that for every architecture.

Engine choice (``engine: auto``). On a GPU every rate group trains batched. On the CPU, vmap turns a
convolution over K stacked clients into one grouped convolution; oneDNN runs those well below its dense
convolution speed, so batching pays only where per-client work is small and Python/dispatch overhead
dominates. Measured on the 2-core CPU (conv, 20 steps of batch 10 per client, seconds for the group,
sequential / batched)::

    clients   a (40 M MACs/img)   b           c           d           e
    2         0.60 / 1.18         0.26/0.29   0.14/0.18   0.08/0.10   0.07/0.08
    10        2.82 / 4.97         1.06/1.08   0.67/0.54   0.40/0.26   0.33/0.17

Rule: a group trains batched when it has at least :data:`CPU_BATCHED_MIN_CLIENTS` clients and one
client's forward pass at a full batch costs at most :data:`CPU_BATCHED_MAX_MACS` true MACs (batch size x
MACs per sample); otherwise its clients train one at a time with the sequential code. ``engine:
batched`` forces the batched step for every group. Results agree either way (within float tolerance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from heterofl.feddyn import add_regularizer_gradient_
from heterofl.local_training import (
    ClientJob,
    LocalSettings,
    ModelForRate,
    SequentialEngine,
    TrainMetrics,
    client_schedule,
    local_loss,
)
from heterofl.models.exits import prediction_logits
from heterofl.submodel import Params
from heterofl.tasks import MaskedLMTask, Task

CPU_BATCHED_MIN_CLIENTS = 4
"""On the CPU, smaller rate groups train one client at a time (batching never paid off for 2 clients)."""
CPU_BATCHED_MAX_MACS = 5.0e7
"""On the CPU, groups whose per-client step costs more true MACs than this train one client at a time."""


class BatchedEngine:
    """Trains K clients of one architecture as one stacked model (see the module docstring).

    FjORD's clients train a different nested width at every batch, so they share no architecture from
    step to step; their groups train one client at a time with the sequential code. So do FIARSE's masked
    clients (their masks differ per client and per step), InclusiveFL's (they hold exits their loss does not
    reach: torch's SGD leaves a parameter without a gradient untouched, weight decay included, which a
    vmapped gradient of zeros cannot express) and runs with
    ``precision: bf16``: in torch 2.14 the backward of a vmapped BatchNorm under autocast fails ("expected
    scalar type BFloat16 but found Float"; without BatchNorm it works).
    """

    name = "batched"

    def __init__(self, model_for_rate: ModelForRate, task: Task) -> None:
        self.task = task
        self.sequential = SequentialEngine(model_for_rate, task)
        self._steps: dict[int, Callable] = {}

    def train(
        self, model: nn.Module, local: Params, jobs: list[ClientJob], settings: LocalSettings, metrics: TrainMetrics
    ) -> Params:
        masked_or_nested = any(job.step_rates or job.keep_fraction is not None for job in jobs)
        untrained_exits = getattr(model, "stage_exits", None) == "last"
        if masked_or_nested or untrained_exits or settings.autocast is not None:
            return self.sequential.train(model, local, jobs, settings, metrics)
        return self._train_group(model, local, jobs, settings, metrics)

    def _step_function(self, model: nn.Module) -> Callable:
        """``(params, inputs, targets, mask, distill_weight) -> (grads, (loss, correct, correct_masked))``, vmapped
        over clients."""
        key = id(model)
        if key not in self._steps:
            task = self.task

            def client_loss(params, inputs, targets, mask, distill_weight):
                output = functional_call(model, params, (inputs,))
                loss = local_loss(task, output, targets, mask, distill_weight)
                logits = prediction_logits(output)
                correct = (logits.argmax(-1) == targets).sum()
                masked = logits if mask is None else logits.masked_fill(~mask, 0.0)  # as the loss (TrainMetrics)
                correct_masked = (masked.argmax(-1) == targets).sum()
                return loss, (loss.detach(), correct, correct_masked)

            grad_fn = grad_and_value(client_loss, has_aux=True)
            self._steps[key] = {
                True: vmap(grad_fn, in_dims=(0, 0, 0, 0, None), randomness="different"),
                False: vmap(grad_fn, in_dims=(0, 0, 0, None, None), randomness="different"),
            }
        return self._steps[key]

    def _train_group(
        self, model: nn.Module, local: Params, group: list[ClientJob], settings: LocalSettings, metrics: TrainMetrics
    ) -> Params:
        """K clients of one rate, stacked; returns their trained parameters, each (K, *shape)."""
        model.train()
        k = len(group)
        names = [name for name, _ in model.named_parameters()]
        params = {n: local[n].detach().clone(memory_format=torch.contiguous_format) for n in names}
        buffers = {n: torch.zeros_like(p) for n, p in params.items()}
        masks = torch.stack([job.labels_held for job in group]) if settings.use_mask else None
        feddyn = None  # FedDyn: (start, h), each (K, *shape), for the regulariser's gradient
        if settings.feddyn_alpha:
            feddyn = (
                {n: p.clone() for n, p in params.items()},
                {n: torch.stack([j.feddyn_h[n] for j in group]) for n in names},
            )
        steps_fn = self._step_function(model)
        schedules = [client_schedule(self.task, job, settings) for job in group]
        device = params[names[0]].device
        for t in range(max(len(steps) for steps, _ in schedules)):
            by_shape: dict[tuple[int, ...], list[int]] = {}
            batches = {}
            for i, (steps, generator) in enumerate(schedules):
                if t < len(steps):
                    batches[i] = self.task.batch(steps[t], generator)
                    by_shape.setdefault(tuple(batches[i][0].shape), []).append(i)
            for members in by_shape.values():
                inputs = torch.stack([batches[i][0] for i in members])
                targets = torch.stack([batches[i][1] for i in members])
                if len(members) == k:
                    self._step(steps_fn, params, buffers, inputs, targets, masks, settings, t, metrics, feddyn)
                    continue
                index = torch.as_tensor(members, device=device)
                sub_params = {n: p.index_select(0, index) for n, p in params.items()}
                sub_buffers = {n: b.index_select(0, index) for n, b in buffers.items()}
                sub_masks = masks.index_select(0, index) if masks is not None else None
                sub_feddyn = None
                if feddyn is not None:
                    sub_feddyn = tuple({n: v.index_select(0, index) for n, v in part.items()} for part in feddyn)
                self._step(
                    steps_fn, sub_params, sub_buffers, inputs, targets, sub_masks, settings, t, metrics, sub_feddyn
                )
                for n in names:
                    params[n].index_copy_(0, index, sub_params[n])
                    buffers[n].index_copy_(0, index, sub_buffers[n])
        return params

    @staticmethod
    @torch.no_grad()
    def _step(
        steps_fn,
        params: Params,
        buffers: Params,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor | None,
        settings: LocalSettings,
        t: int,
        metrics: TrainMetrics,
        feddyn: tuple[Params, Params] | None = None,
    ) -> None:
        """One SGD step of every stacked client, in place (clip_grad_norm_ then torch.optim.SGD); with
        ``feddyn`` (start, h), FedDyn's regulariser gradient is added first, as the sequential engine does."""
        with torch.enable_grad():
            grads, (_, (loss, correct, correct_masked)) = steps_fn[masks is not None](
                params, inputs, targets, masks, settings.distill_weight
            )
        if feddyn is not None:
            start, h = feddyn
            for name, g in grads.items():
                add_regularizer_gradient_(g, params[name], start[name], h[name], settings.feddyn_alpha)
        k = inputs.shape[0]
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), 2, dim=1) for g in grads.values()])
        total = torch.linalg.vector_norm(norms, 2, dim=0)
        coef = torch.clamp(settings.clip_norm / (total + 1e-6), max=1.0)
        for name, p in params.items():
            g = grads[name]
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
            d = g.add(p, alpha=settings.weight_decay) if settings.weight_decay else g
            buf = buffers[name]
            if t == 0:
                buf.copy_(d)
            else:
                buf.mul_(settings.momentum).add_(d)
            p.add_(buf, alpha=-settings.lr)
        n = targets[0].numel()
        counts = [correct.sum().to(loss.dtype), correct_masked.sum().to(loss.dtype)]
        metrics.per_step.append(torch.stack([loss.sum() * n, *counts]))
        metrics.samples += n * k
        metrics.steps += k


class AutoEngine:
    """``engine: auto``: batched on a GPU; on the CPU batched only where it pays (module docstring)."""

    name = "auto"

    def __init__(self, model_for_rate: ModelForRate, task: Task) -> None:
        self.task = task
        self.batched = BatchedEngine(model_for_rate, task)
        self.sequential = self.batched.sequential
        self._macs: dict[tuple[int, tuple[int, ...]], int] = {}

    def train(
        self, model: nn.Module, local: Params, jobs: list[ClientJob], settings: LocalSettings, metrics: TrainMetrics
    ) -> Params:
        engine = self.batched if self._batched(model, jobs, settings) else self.sequential
        return engine.train(model, local, jobs, settings, metrics)

    def _batched(self, model: nn.Module, group: list[ClientJob], settings: LocalSettings) -> bool:
        device = next(model.parameters()).device
        if device.type != "cpu":
            return True
        return (
            len(group) >= CPU_BATCHED_MIN_CLIENTS and self._step_macs(model, group[0], settings) <= CPU_BATCHED_MAX_MACS
        )

    def _step_macs(self, model: nn.Module, job: ClientJob, settings: LocalSettings) -> int:
        """True MACs of one client's forward pass at a full batch (cached per model and input shape): the
        per-sample count of the summary and the accounting (:func:`heterofl.complexity.sample_forward_macs`,
        on a forked generator, so a resumed run, which measures at another round, stays bitwise equal)."""
        steps, generator = client_schedule(self.task, job, settings)
        inputs, _ = self.task.batch(steps[0], generator)
        key = (id(model), tuple(inputs.shape))
        if key not in self._macs:
            from heterofl.complexity import sample_forward_macs

            if isinstance(self.task, MaskedLMTask):  # token rows of one window length
                per_sample = sample_forward_macs(model, (), int(inputs.shape[-1]))
            else:
                per_sample = sample_forward_macs(model, tuple(inputs.shape[1:]))
            self._macs[key] = per_sample * inputs.shape[0]
        return self._macs[key]


ENGINES = {"sequential": SequentialEngine, "batched": BatchedEngine, "auto": AutoEngine}


def make_engine(name: str, model_for_rate: ModelForRate, task: Task):
    """The engine called ``name`` (sequential, batched, auto) for a run's models and task."""
    return ENGINES[name](model_for_rate, task)

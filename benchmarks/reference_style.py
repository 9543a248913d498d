"""A HeteroFL round written the way the original code runs it, as the in-run baseline of ``round_speed.py``.

The original (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264; github.com/diaoenmao/
HeteroFL-Computation-and-Communication-Efficient-Federated-Learning-for-Heterogeneous-Clients) does, per round:

* for every sampled client: build a fresh model of the client's rate, gather its parameters from the global
  ones with one index per dimension (``v[torch.meshgrid(out_idx, in_idx)]``) and copy them in, train with
  ``torch.optim.SGD`` (momentum, weight decay) one batch of 10 at a time with gradient-norm clipping and the
  masked cross-entropy, reading the loss back to the host after every step (its logger);
* aggregate with a running sum and a count per global tensor, the output rows restricted to each client's
  labels;
* static BN: a global-rate model whose BatchNorm layers track cumulative statistics (``momentum=None``),
  one pass over the whole training set at batch 10;
* test at batch 50: the whole test set (Global) and every client's own test set with its label mask (Local).

This module does exactly that sequence with this library's models (same layers, same FLOPs), so the ratio
against the library's round measures what the library changed: engines, stacked extraction and aggregation,
large static-BN and test batches, one host read per round. Images only (MNIST conv and CIFAR ResNet without
the reference's per-image CPU augmentation, which would only make the baseline slower).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from heterofl.federation import Federation, RunState, learning_rate

STATIC_BN_BATCH = 10
TEST_BATCH = 50


def _gather(global_value: torch.Tensor, local_shape: torch.Size) -> torch.Tensor:
    """The reference's prefix gather: one index per sliced dimension, trailing kernel dimensions whole."""
    if global_value.dim() == 1:
        return global_value[torch.arange(local_shape[0], device=global_value.device)].clone()
    out_idx = torch.arange(local_shape[0], device=global_value.device)
    in_idx = torch.arange(local_shape[1], device=global_value.device)
    return global_value[torch.meshgrid(out_idx, in_idx, indexing="ij")].clone()


def _output_names(model: nn.Module) -> set[str]:
    """The output layer's weight and bias: the last Linear (its rows are the classes)."""
    last = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    return {f"{last}.weight", f"{last}.bias"}


def _train_client(federation: Federation, job, params: dict, lr: float) -> dict[str, torch.Tensor]:
    config = federation.config
    model = federation.build(job.rate).to(federation.device)
    local = {name: _gather(params[name], p.shape) for name, p in model.named_parameters()}
    model.load_state_dict(local, strict=False)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    task = federation.task
    mask = job.labels_held.to(federation.device)
    generator = torch.Generator().manual_seed(job.seed)
    for _ in range(config.local_epochs):
        order = job.indices[torch.randperm(len(job.indices), generator=generator)]
        for rows in order.split(config.batch_size_train):
            x, y = task.train_x[rows.to(federation.device)], task.train_y[rows.to(federation.device)]
            logits = model(x)
            if config.control.mask:
                logits = logits.masked_fill(~mask, 0)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            loss.item()  # the reference's per-step logger reads every loss back
    return {name: p.detach() for name, p in model.named_parameters()}


def _aggregate(params: dict, locals_: list[dict], labels: list[torch.Tensor], output: set[str]) -> dict:
    new = {}
    for name, value in params.items():
        total, count = torch.zeros_like(value), torch.zeros_like(value)
        for local, held in zip(locals_, labels, strict=True):
            index = tuple(torch.arange(s, device=value.device) for s in local[name].shape[:2])
            grid = torch.meshgrid(*index, indexing="ij") if len(index) == 2 else index
            contribution = local[name]
            if name in output:  # only the rows of the client's labels
                rows = held.to(value.device)
                keep = rows.view(-1, *([1] * (contribution.dim() - 1))).expand_as(contribution)
                total[grid] += torch.where(keep, contribution, torch.zeros_like(contribution))
                count[grid] += keep.to(value.dtype)
            else:
                total[grid] += contribution
                count[grid] += 1
        covered = count > 0
        merged = value.clone()
        merged[covered] = total[covered] / count[covered]
        new[name] = merged
    return new


def _static_bn_model(federation: Federation, params: dict) -> nn.Module:
    model = federation.build(federation.mode.global_rate).to(federation.device)
    model.load_state_dict(params, strict=False)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats, module.momentum = True, None
            module.running_mean = torch.zeros(module.num_features, device=federation.device)
            module.running_var = torch.ones(module.num_features, device=federation.device)
            module.num_batches_tracked = torch.tensor(0, device=federation.device)
    model.train()
    with torch.no_grad():
        inputs = federation.task.statistics_inputs()
        order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
        for rows in order.split(STATIC_BN_BATCH):
            model(inputs[rows.to(federation.device)])
    return model.eval()


def _test(federation: Federation, model: nn.Module) -> None:
    task, device = federation.task, federation.device
    with torch.no_grad():
        for x, y in zip(task.test_x.split(TEST_BATCH), task.test_y.split(TEST_BATCH), strict=True):
            logits = model(x)
            F.cross_entropy(logits, y).item()
            (logits.argmax(-1) == y).float().mean().item()
        for user, indices in enumerate(federation.partition.test_indices):
            rows = torch.as_tensor(indices, dtype=torch.long, device=device)
            mask = federation.labels_held[user]
            for batch in rows.split(TEST_BATCH):
                logits = model(task.test_x[batch]).masked_fill(~mask, 0)
                F.cross_entropy(logits, task.test_y[batch]).item()


def reference_style_round(federation: Federation, state: RunState) -> tuple[RunState, dict[str, float]]:
    """One round the original code's way on ``federation``'s data and clients; seconds per phase."""
    round_ = state.round + 1
    sampler = torch.Generator()
    sampler.set_state(state.sampler_state)
    jobs, _ = federation._round_jobs(round_, sampler, state.method_state)
    lr = learning_rate(federation.config, round_)
    sync = torch.cuda.synchronize if federation.device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    trained = [_train_client(federation, job, state.params, lr) for job in jobs]
    output = _output_names(federation.build(federation.mode.global_rate))
    params = _aggregate(state.params, trained, [job.labels_held for job in jobs], output)
    sync()
    after_train = time.perf_counter()
    model = _static_bn_model(federation, params)
    sync()
    after_bn = time.perf_counter()
    _test(federation, model)
    sync()
    end = time.perf_counter()
    phases = {
        "train": after_train - start,
        "static_bn": after_bn - after_train,
        "evaluate": end - after_bn,
        "round": end - start,
    }
    return RunState(round_, params, sampler.get_state(), state.history, state.method_state), phases

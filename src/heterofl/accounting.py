"""Communication and compute of one federated round, counted exactly from what the round did.

HeteroFL (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264) claims computation and
communication efficiency; these columns of ``history.csv`` say what a run spent:

* ``bytes_to_clients`` / ``bytes_from_clients``: float32 bytes (4 x numel) of every sampled client's
  submodel as the server sends it and as the client uploads it, summed over the round's clients. The
  reference (``Federation.distribute``) deep-copies the whole submodel to a client, and the client's whole
  trained state dict comes back; the label-row masking of the output layer (``Federation.combine``) only
  decides which rows the server averages, after the upload. So both directions count whole submodels.
  The parameter count depends only on the client's rate (its widths), not on which units it holds, so
  FedRolex, Federated Dropout and FedEcover clients of a rate move as many bytes as HeteroFL's. FjORD
  clients send and receive their whole p_max submodel.
* ``client_train_macs``: true forward multiply-accumulates of one sample
  (:func:`heterofl.complexity.sample_forward_macs`) of the submodel a client trains, times the samples it
  processed in the round, times 3 (the backward pass costs about two forwards). Local training uses every
  sample every epoch (``Tensor.split`` keeps the last partial batch, nothing is dropped), so an image client
  processes ``local_epochs x n_i`` images. A FjORD client trains every batch at a nested rate drawn from its
  own generator (``ClientJob.rate_schedule``): each batch is counted at the rate it really used. A language-model
  client processes all its token rows in every 64-token window (the last window may be shorter), and since
  the attention matmuls grow with the square of the window length, each window is counted at its own length.
* ``server_static_bn_macs``: forward MACs of the static BN pass (one pass over every training image at
  every evaluated rate, only for models with BatchNorm layers: ``static_bn.fit_static_bn``).
* ``server_eval_macs``: forward MACs of the test pass at every evaluated rate (the local metrics reuse the
  same logits). For the language model: every test row in every window, at the window's length.

Both server columns are 0 in rounds that do not evaluate (not empty), so that cumulative sums work. The
counts come from models built on the ``meta`` device (no memory, no draw from any random generator) and
are cached per rate (and window length), so a round only adds a few integer products per client.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from heterofl.complexity import sample_forward_macs
from heterofl.local_training import ClientJob, LocalSettings
from heterofl.rates import RATE_OF_LETTER
from heterofl.results import ACCOUNTING_COLUMNS
from heterofl.static_bn import batch_norms
from heterofl.tasks import BPTT, ImageTask, MaskedLMTask

BYTES_PER_PARAMETER = 4
"""float32."""
TRAIN_FORWARD_MULTIPLE = 3
"""Forward + backward of a training step, in forward passes (the backward costs about two forwards)."""


def window_lengths(columns: int, bptt: int = BPTT) -> list[int]:
    """Token columns of every window a pass over ``columns`` columns takes (the last may be shorter)."""
    return [min(bptt, columns - start) for start in range(0, columns, bptt)]


def image_batch_sizes(samples: int, batch_size: int) -> list[int]:
    """Batch sizes of one epoch over ``samples`` images: ``Tensor.split`` keeps the last partial batch."""
    full, rest = divmod(samples, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def meta_model(build: Callable[[float], nn.Module], rate: float) -> nn.Module:
    """The architecture of ``rate`` on the meta device: shapes only, no random draw, no memory."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build(rate)


class RoundAccounting:
    """Bytes and MACs of a round's clients and of the server's evaluation, for one run's models and data."""

    def __init__(self, build: Callable[[float], nn.Module], task: ImageTask | MaskedLMTask) -> None:
        self._build = build
        self._task = task
        self._language = isinstance(task, MaskedLMTask)
        self._models: dict[float, nn.Module] = {}
        self._macs: dict[tuple[float, int], int] = {}
        self._bytes: dict[float, int] = {}

    def _model(self, rate: float) -> nn.Module:
        if rate not in self._models:
            self._models[rate] = meta_model(self._build, rate)
        return self._models[rate]

    def submodel_bytes(self, rate: float) -> int:
        """float32 bytes of a submodel of ``rate`` (every parameter it holds)."""
        if rate not in self._bytes:
            self._bytes[rate] = BYTES_PER_PARAMETER * sum(p.numel() for p in self._model(rate).parameters())
        return self._bytes[rate]

    def forward_macs(self, rate: float, length: int = 0) -> int:
        """True MACs of one forward pass of one sample: an image, or a token row of ``length`` columns."""
        key = (rate, length)
        if key not in self._macs:
            shape = () if self._language else tuple(self._task.train_x.shape[1:])
            self._macs[key] = sample_forward_macs(self._model(rate), shape, length)
        return self._macs[key]

    def _epoch_units(self, job: ClientJob, settings: LocalSettings) -> list[tuple[int, int]]:
        """(samples, window length) of every step of one local epoch, in step order."""
        if self._language:
            rows = len(job.indices)
            return [(rows, length) for length in window_lengths(int(self._task.train_rows.shape[1]))]
        return [(size, 0) for size in image_batch_sizes(len(job.indices), settings.batch_size)]

    def client_train_macs(self, job: ClientJob, settings: LocalSettings) -> int:
        """Forward + backward MACs of one client's local training: every step at the rate it trained."""
        epoch = self._epoch_units(job, settings)
        steps = epoch * settings.epochs
        schedule = job.rate_schedule(len(steps))  # FjORD: the rate of every step; None: always job.rate
        if schedule is None:
            forward = settings.epochs * sum(n * self.forward_macs(job.rate, length) for n, length in epoch)
        else:
            forward = sum(
                n * self.forward_macs(rate, length) for (n, length), rate in zip(steps, schedule, strict=True)
            )
        return TRAIN_FORWARD_MULTIPLE * forward

    def train_columns(self, jobs: list[ClientJob], settings: LocalSettings) -> dict[str, int]:
        """The client columns of a round (and the server columns at 0, set by :meth:`server_columns`)."""
        sent = sum(self.submodel_bytes(job.rate) for job in jobs)
        return {
            "bytes_to_clients": sent,
            "bytes_from_clients": sent,  # every client uploads the whole submodel it was sent
            "client_train_macs": sum(self.client_train_macs(job, settings) for job in jobs),
            "server_static_bn_macs": 0,
            "server_eval_macs": 0,
        }

    def server_columns(self, letters: list[str], dense_rate: float | None = None) -> dict[str, int]:
        """Static BN and test-pass MACs of evaluating the global model at every rate of ``letters``; with
        ``dense_rate`` (FIARSE: masked dense models) every evaluation costs the model of that rate."""
        static_bn, evaluation = 0, 0
        for letter in letters:
            rate = RATE_OF_LETTER[letter] if dense_rate is None else dense_rate
            if self._language:
                rows, columns = self._task.test_rows.shape
                evaluation += sum(int(rows) * self.forward_macs(rate, n) for n in window_lengths(int(columns)))
                continue
            per_image = self.forward_macs(rate)
            if batch_norms(self._model(rate)):
                static_bn += int(self._task.statistics_inputs().shape[0]) * per_image
            evaluation += int(self._task.test_x.shape[0]) * per_image
        return {"server_static_bn_macs": static_bn, "server_eval_macs": evaluation}


__all__ = [
    "ACCOUNTING_COLUMNS",
    "BYTES_PER_PARAMETER",
    "TRAIN_FORWARD_MULTIPLE",
    "RoundAccounting",
    "image_batch_sizes",
    "meta_model",
    "sample_forward_macs",
    "window_lengths",
]

"""The server step: how the round turns the clients' mean into the next global model.

The round (``federation.py``) computes, for every global entry, the count-based mean over the clients that
held it (``aggregation.py``) and then calls the run's server update ``(old, mean, state) -> (new, state)``.
HeteroFL (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264) takes the mean as the new model
(``mean``, the default). Server optimisers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
https://arxiv.org/abs/2003.00295) treat ``old - mean`` as a pseudo-gradient; ``sgd`` is server SGD with
momentum, FedAvgM (Hsu, Qi, Brown, 2019, https://arxiv.org/abs/1909.06335). A new server optimiser is a
function here plus its line in :data:`SERVER_UPDATES` (and its settings, if any, on ``ExperimentConfig``).

``state`` is a plain dict of tensors kept in the run's checkpoint, so a resumed run continues bitwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: configuration checks the names without PyTorch
    import torch

    from heterofl.config import ExperimentConfig

Params = dict[str, "torch.Tensor"]
ServerUpdate = Callable[[Params, Params, dict[str, Any]], tuple[Params, dict[str, Any]]]


def mean_update(config: ExperimentConfig) -> ServerUpdate:
    """The reference's step: the new global model is the mean, exactly (no arithmetic on it)."""

    def update(old: Params, mean: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        return mean, state

    return update


def sgd_update(config: ExperimentConfig) -> ServerUpdate:
    """Server SGD with momentum (FedAvgM): ``d = old - mean``; ``v = d`` in the first round, then
    ``v = momentum * v + d`` (torch.optim.SGD's buffer); ``new = old - server_lr * v``.

    Entries no client held this round have ``d = 0`` and still move by the momentum of earlier rounds, as
    FedAvgM's optimiser does over a full model.
    """
    lr, momentum = config.server_lr, config.server_momentum

    def update(old: Params, mean: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        velocity = state.get("velocity")
        new_velocity: Params = {}
        new: Params = {}
        for name, value in old.items():
            step = value - mean[name]
            if momentum and velocity is not None:
                step = velocity[name] * momentum + step
            new_velocity[name] = step
            new[name] = value - lr * step
        return new, {"velocity": new_velocity} if momentum else {}

    return update


SERVER_UPDATES: dict[str, Callable[[ExperimentConfig], ServerUpdate]] = {"mean": mean_update, "sgd": sgd_update}
"""``server_optimizer`` name -> builder of the run's server update from its config."""


def make_server_update(config: ExperimentConfig) -> ServerUpdate:
    return SERVER_UPDATES[config.server_optimizer](config)

"""FedDyn's dynamic regularisation (Acar et al., "Federated Learning Based on Dynamic Regularization", ICLR
2021, https://arxiv.org/abs/2111.04263) as DepthFL adds it (Kim et al., "DepthFL: Depthwise Federated Learning
for Heterogeneous Clients", ICLR 2023; its code, Flower baselines/depthfl, by the first author).

Off by default (``feddyn_alpha: 0``, the paper's "DepthFL (FedAvg)"); with ``feddyn_alpha: α > 0``:

* every client k keeps a state h_k the size of the parameters it has held (zeros before its first round; the
  authors' ``prev_grads``), carried between the rounds it is sampled in (``RunState.client_state``, in the
  checkpoint);
* its local loss is  loss(θ) − <θ, h_k> + α/2 ‖θ − θ_g‖²  (θ_g: the model it received), whose gradient
  ``α(θ − θ_g) − h_k`` is added to the task's before clipping, as if it were part of the loss; after training
  h_k ← h_k − α(θ_k − θ_g);
* the server keeps h (global-model sized, zeros at first); with c the number of clients that held an entry
  this round and N all clients, h ← h − α (c/N)(mean − old) and the new global model is mean − h/α. Entries
  no client held keep their value and their h. The authors count holders per layer; here c is the count the
  mean was taken over (``aggregation.py``), the same except on output rows, where a client holds only the rows
  of its own labels.

The functions are pure (new tensors out), so a resumed run continues bit for bit.
"""

from __future__ import annotations

import torch

Params = dict[str, torch.Tensor]


def add_regularizer_gradient_(
    grad: torch.Tensor, param: torch.Tensor, start: torch.Tensor, h: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``grad += α(param − start) − h`` in place: the gradient of ``−<θ, h> + α/2 ‖θ − start‖²``."""
    return grad.add_(param.sub(start).mul_(alpha).sub_(h))


def client_state_after(h: Params, trained: Params, start: Params, alpha: float) -> Params:
    """A client's h_k after its round: ``h − α(trained − start)`` for every parameter it held."""
    return {name: h[name] - alpha * (trained[name] - start[name]) for name in trained}


def server_step(
    old: Params, mean: Params, counts: Params, state: dict, alpha: float, num_users: int
) -> tuple[Params, dict]:
    """The new global model and the server's state ``{"h": Params}`` after a round whose count-based ``mean``
    was taken over ``counts`` clients per entry (module docstring)."""
    h_before = state.get("h") or {name: torch.zeros_like(value) for name, value in old.items()}
    new: Params = {}
    h: Params = {}
    for name, value in old.items():
        held = counts[name] > 0
        h[name] = h_before[name] - alpha * (counts[name] / num_users) * (mean[name] - value)
        new[name] = torch.where(held, mean[name] - h[name] / alpha, value)
    return new, {"h": h}

"""Depth-heterogeneous methods: DepthFL (Kim, Kim, Lee, Ko, "DepthFL: Depthwise Federated Learning for
Heterogeneous Clients", ICLR 2023) and InclusiveFL (Liu et al., "No One Left Behind: Inclusive Federated
Learning over Heterogeneous Devices", KDD 2022).

A client of depth level k holds the global model's first k stages, at full width, and the exit after each
of them (``models/exits.py``); the control string's letters name the levels (``methods.registry.depth_level``:
with four stages, a = 4 stages, b = 3, c = 2, d = 1). Selection is therefore trivial, every unit of every
layer the client holds, and what differs from the width methods lives in the model (which stages and exits a
level builds) and in the local loss:

* DepthFL: every held exit's cross-entropy plus mutual self-distillation among them, the distillation
  weight ramped up as the authors' code does (``models.exits.distillation_weight``). By default this is the
  paper's "DepthFL (FedAvg)" variant; ``feddyn_alpha`` > 0 adds the paper's FedDyn correction (``feddyn.py``).
* InclusiveFL, as the DepthFL authors ran it for their comparison (their code's ``extended: false``): only the
  deepest held exit is trained; the paper's momentum distillation of deep layers into shallow ones is not
  implemented.

The server averages every parameter over the clients that hold its layer (count-based, as for every method
here); the global prediction is the mean of the logits of all exits, evaluated at every depth with fresh
static BN.
"""

from __future__ import annotations

from heterofl.methods.base import WholeLayersMethod


class DepthFL(WholeLayersMethod):
    """Every client holds every unit of the layers its depth has (its model has only those layers)."""

    name = "depthfl"


class InclusiveFL(DepthFL):
    """DepthFL's depth prefixes, trained through the deepest held exit only."""

    name = "inclusivefl"

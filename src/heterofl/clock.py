"""The simulated clock: how long each sampled client takes on its device, and which updates a round keeps.

A client of device class d that trains a submodel of ``bytes`` (each way) with ``train_macs`` multiply-adds
(what ``accounting.py`` counts for its width, forward and backward) takes

    seconds = (8 bytes / down + 2 train_macs / throughput + 8 bytes / up) x jitter,

``jitter = exp(sigma_d z)``, z standard normal, drawn per client and round (median 1); a client is online with
its class's availability. The time model is FedScale's and FLASH's (download, train, upload), with the compute
term scaled by the client's own submodel, which FedScale's model-agnostic speeds cannot do (its issue 6).

A synchronous round ends when the last update the server keeps arrives. Policies (``ExperimentConfig``):
wait for every online client (default); ``deadline``: updates later than it are lost and the round lasts until
the deadline if one was lost; ``overcommit``: sample ``ceil(overcommit x K)`` clients and keep the first K to
finish (FedScale's over-commitment). Offline clients never check in: they are neither waited for nor trained.
The server's static BN and evaluation are not on this clock. Draws come from a generator seeded by (run seed,
round), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heterofl.devices import DeviceClass, Fleet

CLOCK_SALT = 0xC10C


def client_seconds(device: DeviceClass, bytes_down: int, bytes_up: int, train_macs: int, jitter: float) -> float:
    """One client's round on its device: download, training (2 FLOPs per MAC), upload, times its jitter."""
    down = 8 * bytes_down / (device.down_mbps * 1e6)
    train = 2 * train_macs / (device.train_gflops * 1e9)
    up = 8 * bytes_up / (device.up_mbps * 1e6)
    return (down + train + up) * jitter


def round_draws(fleet: Fleet, users: list[int], seed: int, round_: int) -> tuple[list[float], list[bool]]:
    """Every sampled client's jitter factor and whether it is online, for this round."""
    generator = np.random.default_rng(np.random.SeedSequence([int(seed), int(round_), CLOCK_SALT]))
    normals = generator.standard_normal(len(users))
    uniforms = generator.random(len(users))
    devices = [fleet.device(u) for u in users]
    jitter = [math.exp(d.jitter * z) for d, z in zip(devices, normals, strict=True)]
    online = [bool(u < d.availability) for d, u in zip(devices, uniforms, strict=True)]
    return jitter, online


@dataclass(frozen=True)
class RoundSchedule:
    """Which sampled clients' updates the round keeps (positions in the sampled list) and how long it lasts."""

    kept: tuple[int, ...]
    dropped: tuple[int, ...]
    """Online clients that trained but whose update was lost: late for the deadline, or beyond the first K."""
    offline: tuple[int, ...]
    seconds: float


def schedule_round(seconds: list[float], online: list[bool], wanted: int, deadline: float | None) -> RoundSchedule:
    """Keep the first ``wanted`` online clients to finish within ``deadline`` (any time without one); the round
    lasts until the last kept update, or until the deadline when an online client missed it."""
    offline = tuple(i for i, up in enumerate(online) if not up)
    finishing = sorted((i for i, up in enumerate(online) if up), key=lambda i: (seconds[i], i))
    in_time = [i for i in finishing if deadline is None or seconds[i] <= deadline]
    kept = tuple(sorted(in_time[:wanted]))
    dropped = tuple(sorted(set(finishing) - set(kept)))
    waited_out = deadline is not None and len(in_time) < len(finishing) and len(kept) < wanted
    length = deadline if waited_out else max((seconds[i] for i in kept), default=0.0)
    return RoundSchedule(kept, dropped, offline, float(length))


__all__ = ["RoundSchedule", "client_seconds", "round_draws", "schedule_round"]

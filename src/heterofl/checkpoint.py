"""Checkpoints that resume bit for bit and refuse to load into the wrong run.

A checkpoint is the :class:`RunState` (global parameters, round, history, client-sampler state, the
extraction method's, the server's and the clients' state where they have one), the
RNG states of python, numpy and torch, and the resolved config with its hash. It is written atomically
and read with ``weights_only=True``, so loading never executes pickled code.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.federation import RunState
from heterofl.io import save_torch

FORMAT_VERSION = 2
_KEYS = {"format", "config", "config_hash", "round", "params", "sampler_state", "history", "rng", "digest"}


def _digest(value: Any, digest: Any = None) -> str:
    """SHA-256 over a checkpoint's content (tensor bytes, numbers, strings), so a flipped byte is caught:
    torch's zip archive does not check the CRC of tensor records and would load corrupt data silently."""
    digest = digest or hashlib.sha256()
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=str):
            digest.update(repr(key).encode())
            _digest(value[key], digest)
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(b"[")
        for item in value:
            _digest(item, digest)
        digest.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    return digest.hexdigest()


def _rng_states() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore_rng_states(states: dict[str, Any]) -> None:
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    path: str | Path, config: ExperimentConfig, state: RunState, partition_hash: str | None = None
) -> None:
    """Write the state; ``partition_hash`` (the partition's content hash) lets a resume refuse another split."""
    payload = {
        "format": FORMAT_VERSION,
        "config": config.result_fields(),
        "config_hash": config.config_hash(),
        "round": state.round,
        "params": {k: v.detach().cpu() for k, v in state.params.items()},
        "sampler_state": state.sampler_state,
        "history": state.history,
        "rng": _rng_states(),
    }
    if partition_hash is not None:  # absent in older checkpoints: their resume cannot check the partition
        payload["partition_hash"] = partition_hash
    if state.method_state:  # FedEcover's pools; absent for stateless methods, as in older checkpoints
        payload["method_state"] = state.method_state
    if state.server_state:  # server momentum's velocity; absent for the plain mean, as in older checkpoints
        payload["server_state"] = {
            key: {k: v.detach().cpu() for k, v in value.items()} for key, value in state.server_state.items()
        }
    if state.client_state:  # FedDyn's per-client h_k; absent otherwise, as in older checkpoints
        payload["client_state"] = {
            key: {user: {k: v.detach().cpu() for k, v in params.items()} for user, params in by_user.items()}
            for key, by_user in state.client_state.items()
        }
    save_torch(path, {**payload, "digest": _digest(payload)})


def read_checkpoint(path: str | Path, config: ExperimentConfig) -> dict[str, Any]:
    """Read and verify a checkpoint for ``config`` without touching any state; refuses corrupt or foreign files."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated/corrupt archives
        raise HeteroFLError(
            "checkpoint", f"{path} is truncated or corrupt ({type(error).__name__}); delete it to start the run afresh"
        ) from None
    version = blob.get("format") if isinstance(blob, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise HeteroFLError(
            "checkpoint",
            f"{path} was written by a newer heterofl (format {version}; this version reads {FORMAT_VERSION});"
            " resume it with that version, or delete it to start afresh",
        )
    if not isinstance(blob, dict) or not set(blob) >= _KEYS:
        missing = ", ".join(sorted(_KEYS - set(blob))) if isinstance(blob, dict) else "all"
        raise HeteroFLError(
            "checkpoint", f"{path} is not a heterofl checkpoint (missing keys: {missing}); delete it to start afresh"
        )
    if blob["format"] != FORMAT_VERSION:
        raise HeteroFLError(
            "checkpoint",
            f"{path} has format {blob['format']!r} but this version reads {FORMAT_VERSION}; delete it to start afresh",
        )
    if _digest({k: v for k, v in blob.items() if k != "digest"}) != blob["digest"]:
        raise HeteroFLError(
            "checkpoint", f"{path} is corrupt (content digest mismatch); delete it to start the run afresh"
        )
    if blob["config_hash"] != config.config_hash():
        wanted = config.result_fields()
        differ = sorted(k for k in set(wanted) | set(blob["config"]) if wanted.get(k) != blob["config"].get(k))
        details = ", ".join(f"{k}: checkpoint {blob['config'].get(k)!r} vs requested {wanted.get(k)!r}" for k in differ)
        raise HeteroFLError("checkpoint", f"{path} belongs to another configuration ({details}); refusing to resume")
    return blob


def restore_checkpoint(blob: dict[str, Any], device: torch.device) -> RunState:
    """The run state of a verified checkpoint; restores the python, numpy and torch RNG states."""
    _restore_rng_states(blob["rng"])
    return RunState(
        round=int(blob["round"]),
        params={k: v.to(device) for k, v in blob["params"].items()},
        sampler_state=blob["sampler_state"],
        history=list(blob["history"]),
        method_state=dict(blob.get("method_state", {})),
        server_state={
            key: {k: v.to(device) for k, v in value.items()} for key, value in blob.get("server_state", {}).items()
        },
        client_state={
            key: {int(user): {k: v.to(device) for k, v in params.items()} for user, params in by_user.items()}
            for key, by_user in blob.get("client_state", {}).items()
        },
    )


def load_checkpoint(path: str | Path, config: ExperimentConfig, device: torch.device) -> RunState:
    """Load a checkpoint for ``config``; a corrupt file or another run's checkpoint is refused clearly."""
    return restore_checkpoint(read_checkpoint(path, config), device)

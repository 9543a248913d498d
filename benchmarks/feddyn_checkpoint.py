"""What DepthFL's FedDyn state costs a checkpoint: size and seconds to write and read, with and without it.

FedDyn keeps a state h_k per client the size of the parameters it held (``heterofl/feddyn.py``), and the run
writes its checkpoint every ``checkpoint_every`` rounds. This builds the state a run reaches once every client
has trained (levels a..d at 25 % each, as ``a1-b1-c1-d1``), writes and reads the checkpoint ``--repeats``
times with and without it, interleaved, and prints the medians and their ratio; ``--csv`` writes them. It also
times the state's tensors written by ``heterofl.io.save_torch`` (streamed into the file) against the earlier way,
through an in-memory buffer (``torch.save`` into ``io.BytesIO``, then the bytes to the file), interleaved.

    python benchmarks/feddyn_checkpoint.py --model conv --clients 100
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from heterofl.checkpoint import load_checkpoint, save_checkpoint
from heterofl.config import ExperimentConfig
from heterofl.federation import RunState
from heterofl.io import save_torch, write_bytes
from heterofl.models import build_model
from heterofl.submodel import parameters_of

LEVELS = {1.0: 4, 0.5: 3, 0.25: 2, 0.125: 1}


def _states(model: str, clients: int) -> tuple[ExperimentConfig, RunState, RunState]:
    dataset = {"conv": "MNIST5k", "resnet18": "CIFAR10"}[model]
    control = f"1_{clients}_0.1_iid_fix_a1-b1-c1-d1_bn_1_1"
    config = ExperimentConfig.from_dict(
        {"dataset": dataset, "model": model, "control": control, "method": "depthfl", "feddyn_alpha": 0.1}
    )
    extra = {"in_channels": 3} if model == "resnet18" else {}
    held = {
        rate: parameters_of(build_model(model, rate, stage_exits="all", depth_of=LEVELS, **extra)) for rate in LEVELS
    }
    params = held[1.0]
    rates = list(LEVELS)
    h = {user: {n: torch.randn_like(v) for n, v in held[rates[user % 4]].items()} for user in range(clients)}
    plain = RunState(1, params, torch.Generator().get_state())
    with_h = RunState(1, params, torch.Generator().get_state(), client_state={"feddyn_h": h})
    with_h.server_state = {"h": {n: torch.zeros_like(v) for n, v in params.items()}}
    return config, plain, with_h


def _streamed_and_buffered(path: Path, state: RunState) -> tuple[float, float]:
    """Seconds to write the state's tensors with ``save_torch`` (streamed into the file) and the earlier way
    (serialised into memory first, then written): the same payload, no digest."""
    payload = {"params": state.params, "client_state": state.client_state, "server_state": state.server_state}
    started = time.perf_counter()
    save_torch(path, payload)
    streamed = time.perf_counter()
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    return streamed - started, time.perf_counter() - streamed


def _time(config: ExperimentConfig, state: RunState, path: Path) -> tuple[float, float]:
    started = time.perf_counter()
    save_checkpoint(path, config, state)
    written = time.perf_counter()
    load_checkpoint(path, config, torch.device("cpu"))
    return written - started, time.perf_counter() - written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="conv", choices=["conv", "resnet18"])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="write the medians here")
    args = parser.parse_args()
    config, plain, with_h = _states(args.model, args.clients)
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "feddyn": []}
    payload_writes: list[tuple[float, float]] = []
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for name, state in (("plain", plain), ("feddyn", with_h)):
                path = Path(folder) / f"{name}.pt"
                times[name].append(_time(config, state, path))
                sizes[name] = path.stat().st_size / 2**20
            payload_writes.append(_streamed_and_buffered(Path(folder) / "payload.pt", with_h))
    rows = [
        {
            "model": args.model,
            "clients": args.clients,
            "state": name,
            "mib": round(sizes[name], 1),
            "write_s": statistics.median(t[0] for t in runs),
            "read_s": statistics.median(t[1] for t in runs),
            "payload_write_s_streamed": statistics.median(t[0] for t in payload_writes) if name == "feddyn" else None,
            "payload_write_s_through_memory": statistics.median(t[1] for t in payload_writes)
            if name == "feddyn"
            else None,
        }
        for name, runs in times.items()
    ]
    frame = pd.DataFrame(rows)
    plain_row, feddyn_row = frame.iloc[0], frame.iloc[1]
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"FedDyn state: {feddyn_row['mib'] / plain_row['mib']:.1f}x the checkpoint size, "
        f"{feddyn_row['write_s'] / plain_row['write_s']:.1f}x the write time (medians of {args.repeats}); "
        "its tensors written through memory took "
        f"{feddyn_row['payload_write_s_through_memory'] / feddyn_row['payload_write_s_streamed']:.1f}x as long as"
        " streamed into the file"
    )
    if args.csv:
        frame.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()

"""The benchmark's reference-style round (``benchmarks/reference_style.py``) is a correct HeteroFL round.

It is the in-run baseline of ``benchmarks/round_speed.py``; a speed ratio against a loop that computed
something else would mean nothing. With one full-size batch per client the data order cannot matter, so its
aggregated model must equal the library's sequential engine's (prefix gather, count-based averaging, output
rows restricted to each client's labels, masked loss, clipping, momentum and weight decay).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from heterofl.config import ExperimentConfig
from heterofl.data import Dataset, make_partition
from heterofl.federation import Federation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference_style import reference_style_round  # noqa: E402


def test_reference_style_round_aggregates_the_same_model_as_the_library():
    g = torch.Generator().manual_seed(0)
    data = Dataset(
        "MNIST5k",
        torch.randn(240, 1, 28, 28, generator=g),
        torch.randint(0, 10, (240,), generator=g),
        torch.randn(60, 1, 28, 28, generator=g),
        torch.randint(0, 10, (60,), generator=g),
        10,
        False,
    )
    control = "1_10_0.6_non-iid-2_fix_a1-b1-e1_bn_1_1"
    config = ExperimentConfig.from_dict(
        {"dataset": "MNIST5k", "control": control, "rounds": 1, "engine": "sequential", "local_epochs": 1}
        | {"batch_size_train": 1000, "eval_rates": "global"}
    )
    federation = Federation(config, data, make_partition(data, "non-iid-2", 10, seed=0), torch.device("cpu"))
    start = federation.initial_state()
    library = federation.run_round(start)
    reference, phases = reference_style_round(federation, start)
    assert set(phases) == {"train", "static_bn", "evaluate", "round"}
    assert reference.params.keys() == library.params.keys()
    moved = 0
    for name, value in library.params.items():
        torch.testing.assert_close(reference.params[name], value, atol=1e-5, rtol=1e-4, msg=name)
        moved += int(not torch.equal(value, start.params[name]))
    assert moved == len(library.params)  # every tensor was trained, so the comparison is not vacuous

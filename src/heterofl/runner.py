"""One training run from config to files: partition, federation, checkpoints, outputs.

This is what ``heterofl train`` and the Snakemake ``train`` rule execute. Bad input is rejected before
any data is loaded; a run resumes from its checkpoint by itself; outputs appear only when complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from heterofl import provenance
from heterofl.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from heterofl.config import ExperimentConfig
from heterofl.data import Dataset, load_dataset, make_partition, read_partition
from heterofl.data.partition import Partition
from heterofl.device import pick_device
from heterofl.devices import read_fleet
from heterofl.divergence import detect_divergence
from heterofl.errors import HeteroFLError, RunFailed
from heterofl.federation import Federation, RunState, check_fleet
from heterofl.io import save_torch, write_csv, write_text, write_yaml
from heterofl.local_training import DivergenceError
from heterofl.lock import run_lock
from heterofl.results import CHECKPOINT, DIVERGED, FAILED, RUN_FILES
from heterofl.state_checks import check_params, check_random_states, check_round

log = logging.getLogger("heterofl")


def load_partition(config: ExperimentConfig, dataset: Dataset, partition_path: str | Path | None) -> Partition:
    control = config.control
    split = control.data_split_mode
    if partition_path is None:
        return make_partition(dataset, split, control.num_users, config.seed, config.non_iid_variant)
    partition = read_partition(partition_path, dataset)
    if partition.num_users != control.num_users:
        raise HeteroFLError(
            "partition",
            f"{partition_path} has {partition.num_users} clients but the control string asks for {control.num_users}",
            f"a partition with {control.num_users} clients",
        )
    if partition.scheme != split:
        raise HeteroFLError(
            "partition",
            f"{partition_path} is a {partition.scheme!r} split but the control string asks for {split!r}",
            f"a {split} partition",
        )
    if partition.seed != config.seed:
        raise HeteroFLError(
            "partition",
            f"{partition_path} was made with seed {partition.seed} but the run's seed is {config.seed}",
            f"a partition made with --seed {config.seed}",
        )
    if split.startswith("non-iid") and partition.variant != config.non_iid_variant:
        raise HeteroFLError(
            "partition",
            f"{partition_path} is of variant {partition.variant!r} but the run asks for {config.non_iid_variant!r}",
            f"a partition made with --variant {config.non_iid_variant}",
        )
    return partition


def partition_record(partition: Partition, path: str | Path | None) -> dict[str, Any]:
    """What provenance keeps of the partition a run trained on (not hashed into the config: a run's config
    hash stays what it was whether its split came from a file or was made from the seed)."""
    return {
        "path": str(path) if path is not None else None,
        "content_hash": partition.content_hash,
        "seed": partition.seed,
    }


def check_same_partition(partition: Partition, expected: str | None, source: str | Path | None, why: str) -> None:
    """Refuse a partition whose content hash is not ``expected`` (None: nothing to compare with)."""
    if expected is not None and partition.content_hash != expected:
        shown = source if source is not None else f"the partition made from seed {partition.seed}"
        raise HeteroFLError(
            "partition",
            f"{shown} (hash {partition.content_hash[:12]}) is not the partition {why} (hash {expected[:12]})",
            f"the partition file with hash {expected[:12]}",
        )


def check_training_data(partition: Partition, source: str | Path | None = None) -> None:
    """Refuse a partition in which some client holds no training samples, naming those clients.

    Such a client would run one empty batch whose mean loss is 0/0 = NaN, and the run would be reported as
    diverged. Training it anyway would put its untouched submodel into the unweighted count-based average
    (``aggregation.py``: every client holding an entry counts once, whatever its sample count), pulling every
    round back towards the previous model; the reference's splits never leave a client without data, so no
    reference behaviour is lost by refusing. ``make_partition`` never makes such a partition; a hand-made one can.
    """
    empty = [user for user, indices in enumerate(partition.train_indices) if len(indices) == 0]
    if empty:
        where = f"{source} " if source is not None else "the partition "
        raise HeteroFLError(
            "partition",
            f"{where}gives no training samples to client{'s' if len(empty) > 1 else ''} "
            f"{', '.join(map(str, empty))} (of {partition.num_users})",
            "a partition in which every client holds at least one training sample",
        )


def flag_divergence(out: Path, config: ExperimentConfig, dataset: Dataset, history: pd.DataFrame) -> str | None:
    """Write ``DIVERGED`` (one line: the reason, with its numbers) when a finite run diverged, and warn.

    The run still finishes and keeps its files; the report reads the flag and leaves the run out of the means.
    The rule: :func:`heterofl.divergence.detect_divergence`.
    """
    reason = detect_divergence(history, config.mode.letters[0], dataset.num_classes)
    if reason is not None:
        write_text(out / DIVERGED, reason + "\n")
        log.warning("%s diverged: %s; flagged in %s, the report leaves it out of the means", out, reason, DIVERGED)
    return reason


def train_run(
    config: ExperimentConfig,
    out_dir: str | Path,
    partition_path: str | Path | None = None,
    device: str | None = None,
    on_round: Callable[[RunState], None] | None = None,
    fleet_path: str | Path | None = None,
    partition_hash: str | None = None,
) -> pd.DataFrame:
    """Train (or resume) one run into ``out_dir`` and return its history; one writer per folder (``lock.py``).
    ``fleet_path``: the fleet file of a run on the simulated clock (``config.fleet``); ``partition_hash``: the
    content hash the partition must have (a reproduction of a run that recorded it)."""
    with run_lock(out_dir):
        return _train_locked(config, Path(out_dir), partition_path, device, on_round, fleet_path, partition_hash)


def use_deterministic_kernels(enabled: bool = True) -> None:
    """Deterministic kernels (cuDNN and cuBLAS included): bitwise-repeatable GPU runs, at some speed cost."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def _train_locked(
    config: ExperimentConfig,
    out: Path,
    partition_path: str | Path | None,
    device: str | None,
    on_round: Callable[[RunState], None] | None,
    fleet_path: str | Path | None = None,
    partition_hash: str | None = None,
) -> pd.DataFrame:
    checkpoint = out / CHECKPOINT
    resume = read_checkpoint(checkpoint, config) if checkpoint.exists() else None  # refuse before loading data
    if resume is not None:
        check_round(resume, config.rounds, checkpoint)
        check_random_states(resume, checkpoint)
    if os.environ.get("HETEROFL_DETERMINISTIC", "0") not in ("", "0"):  # docs/determinism.md
        use_deterministic_kernels()
    fleet = read_fleet(fleet_path) if fleet_path is not None else None
    check_fleet(config, fleet, training=True)  # before loading data
    dataset = load_dataset(config.dataset, config.data_root)
    partition = load_partition(config, dataset, partition_path)
    check_training_data(partition, partition_path)
    check_same_partition(partition, partition_hash, partition_path, "the original run trained on")
    if resume is not None:
        check_same_partition(partition, resume.get("partition_hash"), partition_path, f"{checkpoint} was trained on")
    federation = Federation(config, dataset, partition, pick_device(device), fleet=fleet)
    federation.build_models()  # before the RNG is seeded or restored
    if resume is not None:
        check_params(resume["params"], federation.global_template(), checkpoint, "checkpoint")
        state = restore_checkpoint(resume, federation.device)
        log.info("resuming %s from round %d", out, state.round)
    else:
        state = federation.initial_state()
    (out / FAILED).unlink(missing_ok=True)
    (out / DIVERGED).unlink(missing_ok=True)

    def after_round(new_state: RunState) -> None:
        if new_state.round % config.checkpoint_every == 0 or new_state.round == config.rounds:
            save_checkpoint(checkpoint, config, new_state, partition.content_hash)
        if on_round is not None:
            on_round(new_state)

    if "SLURM_JOB_ID" in os.environ:
        log.info("running as SLURM job %s on %s", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?"))
    log.info(
        "training %s on %s (%s engine) for %d rounds",
        config.model_tag,
        federation.device,
        federation.engine.name,
        config.rounds,
    )
    try:
        state = federation.train(state, after_round)
    except DivergenceError as error:
        kept = f"last good checkpoint kept at {checkpoint}" if checkpoint.exists() else "no checkpoint was written yet"
        message = f"run diverged at round {error.round}: {error}; {kept}"
        write_text(out / FAILED, message + "\n")
        log.error(message, extra={"file_only": True})  # the CLI prints it to stderr once, as its error line
        raise RunFailed(message) from None
    history = pd.DataFrame(state.history)
    flag_divergence(out, config, dataset, history)
    first_round = resume["round"] + 1 if resume is not None else 1
    session = provenance.record(
        "train",
        federation.device,
        federation.engine.name,
        rounds=f"{first_round}-{config.rounds}",
        config_hash=config.config_hash(),
        partition=partition_record(partition, partition_path),
    )
    provenance.append(out, session, fresh=resume is None)
    write_outputs(out, config, state, history)
    return history


def write_outputs(out: Path, config: ExperimentConfig, state: RunState, history: pd.DataFrame) -> None:
    """Write the run's files, the config last, so a complete config.yaml means a complete run.

    ``eval.csv`` is not written here: ``evaluate_run`` re-evaluates the final model at every rate.
    """
    save_torch(
        out / RUN_FILES["model"], {"params": {k: v.cpu() for k, v in state.params.items()}, "config": config.to_dict()}
    )
    write_csv(out / RUN_FILES["history"], history)
    write_yaml(out / RUN_FILES["config"], config.to_dict())


def load_model_params(path: str | Path, config: ExperimentConfig | None = None) -> dict[str, torch.Tensor]:
    """The final parameters of ``model.pt``; with ``config`` (the run's config.yaml), refuses a model trained
    with other settings (another run's model, or a config.yaml edited after training)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        params, stored = blob["params"], blob.get("config")
    except Exception as error:
        raise HeteroFLError("model", f"{path} is truncated or corrupt ({type(error).__name__})") from None
    if config is not None and isinstance(stored, dict) and stored:  # older or hand-made files may lack it
        try:
            trained = ExperimentConfig.from_dict(stored)
        except HeteroFLError as error:
            raise HeteroFLError("model", f"{path} holds an unreadable configuration ({error})") from None
        if trained.config_hash() != config.config_hash():
            theirs, mine = trained.result_fields(), config.result_fields()
            differ = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            raise HeteroFLError(
                "model",
                f"{path} was trained with other settings than config.yaml beside it (differs in {', '.join(differ)})",
                "the config.yaml and model.pt of one training run; retrain to change settings",
            )
    return params

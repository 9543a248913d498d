"""Evaluate a finished run: its final model at every rate, plus best and last-k from its history.

Training may evaluate only the global rate (``eval_rates: global``) to save time; this step always
evaluates every submodel rate, with fresh static BN statistics for each, and writes ``eval.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from heterofl import provenance
from heterofl.config import ExperimentConfig
from heterofl.csv_checks import read_run_history
from heterofl.data import load_dataset
from heterofl.device import pick_device
from heterofl.errors import HeteroFLError
from heterofl.federation import Federation
from heterofl.io import write_csv
from heterofl.rates import RATE_OF_LETTER
from heterofl.results import RUN_FILES, summarize_history
from heterofl.runner import check_same_partition, load_model_params, load_partition
from heterofl.settings_file import read_yaml_config
from heterofl.state_checks import check_params


def evaluate_run(
    run_path: str | Path,
    out: str | Path | None = None,
    partition_path: str | Path | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    run = Path(run_path)
    for key in ("config", "history", "model"):
        if not (run / RUN_FILES[key]).is_file():
            raise HeteroFLError("run", f"{run} has no {RUN_FILES[key]}; train it first", "a finished run folder")
    trained = ExperimentConfig.from_dict(read_yaml_config(run / RUN_FILES["config"]))
    config = trained.replace(eval_rates="all")
    model_params = load_model_params(run / RUN_FILES["model"], trained)  # every file refused before the data
    past_rounds = read_run_history(run / RUN_FILES["history"])
    dataset = load_dataset(config.dataset, config.data_root)
    partition = load_partition(config, dataset, partition_path)
    check_same_partition(
        partition, provenance.trained_partition(run).get("content_hash"), partition_path, f"{run} was trained on"
    )
    federation = Federation(config, dataset, partition, pick_device(device))
    check_params(model_params, federation.global_template(), run / RUN_FILES["model"], "model")
    params = {k: v.to(federation.device) for k, v in model_params.items()}
    final = federation.evaluate(params)
    history = summarize_history(past_rounds, config.last_k).set_index(["letter", "metric"])
    rows = []
    for letter, metrics in final.items():
        for metric, value in metrics.items():
            past = history.loc[(letter, metric)] if (letter, metric) in history.index else None
            rows.append(
                {
                    "letter": letter,
                    "rate": RATE_OF_LETTER[letter],
                    "metric": metric,
                    "final": value,
                    "best": past["best"] if past is not None else value,
                    "mean_last_k": past["mean_last_k"] if past is not None else value,
                    "evaluations": int(past["evaluations"]) if past is not None else 1,
                }
            )
    frame = pd.DataFrame(rows)
    write_csv(out or run / RUN_FILES["eval"], frame)
    if out is None:  # an evaluation written elsewhere (a reproduction check) is not this run's
        provenance.append(run, provenance.record("evaluate", federation.device, federation.engine.name))
    return frame

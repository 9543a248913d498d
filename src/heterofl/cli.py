"""The ``heterofl`` command line: partition, train, evaluate, summarize, report.

Commands only parse and delegate; every input is validated into typed objects before any work starts,
and every failure the user can fix is printed as one line (no traceback) with a non-zero exit code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from heterofl.config import ExperimentConfig
from heterofl.data.registry import dataset_names
from heterofl.errors import HeteroFLError, RunFailed, mark_output_error, os_error_line
from heterofl.lock import run_lock
from heterofl.models.registry import model_names
from heterofl.output_paths import check_outputs
from heterofl.settings_file import load_yaml, read_yaml_config
from heterofl.write_guard import check_file_output, check_folder_output, check_run_folder, read_only_tree

log = logging.getLogger("heterofl")
_TRAIN_INSTALL = "pip install -e '.[train]' (CPU-only PyTorch: first pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu)"
_DATASET_HELP = ", ".join(dataset_names()[:-1]) + f" or {dataset_names()[-1]}."


class _LazyFileHandler(logging.FileHandler):
    """Creates the log's folder, like the file, at the first line logged: a refused input leaves neither."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        """A log that cannot be written (full disk, /dev/full) stops the command, naming the log and errno;
        logging's default prints a traceback and carries on, and the command would exit 0."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logging.getLogger().removeHandler(self)  # no later line retries it, and shutdown does not flush it
            with contextlib.suppress(OSError):  # closing flushes the same unwritable buffer again
                self.close()
            raise mark_output_error(error, self.baseFilename)
        super().handleError(record)


def _setup_logging(log_file: str | Path | None, verbose: bool = False) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setLevel(logging.INFO if verbose else logging.WARNING)
    handlers[0].addFilter(lambda record: not getattr(record, "file_only", False))  # said on stderr otherwise
    if log_file:
        file_handler = _LazyFileHandler(log_file, delay=True)  # no empty log (or folder) for a refused input
        file_handler.setLevel(logging.INFO)
        handlers.append(file_handler)
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True, format="%(asctime)s %(levelname)s %(message)s"
    )


def guard_files(files: dict[str, Any], own_run: str | Path | None = None, replaces: tuple[str, ...] = ()) -> None:
    """:func:`check_file_output` for every given file option (``None`` skipped, lists and tuples unpacked)."""
    for field, paths in files.items():
        for path in paths if isinstance(paths, list | tuple) else [paths]:
            if path is not None:
                check_file_output(path, field, own_run, replaces)


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    out, seen = {}, {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HeteroFLError("--set", f"{pair!r} is not KEY=VALUE", "e.g. --set rounds=10")
        key = key.strip()
        if key in seen:  # the last one would win silently, hiding a typo in a long command line
            raise HeteroFLError(key, f"is given twice (--set {seen[key]} and --set {pair})", "one --set per key")
        seen[key] = pair
        try:
            out[key] = load_yaml(value)
        except yaml.YAMLError:
            raise HeteroFLError(key, f"{value!r} is not a valid value") from None
    return out


def build_config(
    config_file: str | None, control: str | None, dataset: str | None, seed: int | None, overrides: tuple[str, ...]
) -> ExperimentConfig:
    """Merge, in increasing priority: YAML file, --control, --dataset/--seed, --set KEY=VALUE."""
    values: dict[str, Any] = read_yaml_config(config_file) if config_file else {}
    if control is not None:
        values["control"] = control
    if dataset is not None:
        values["dataset"] = dataset
    if seed is not None:
        values["seed"] = seed
    values.update(_parse_overrides(overrides))
    return ExperimentConfig.from_dict(values, requested=True)


_config_options = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of run settings."),
    click.option("--control", help="Reference control string, e.g. 1_100_0.1_iid_fix_a2-b8_bn_1_1."),
    click.option("--dataset", help=_DATASET_HELP),
    click.option("--seed", type=int, help="Run seed (model init, client sampling, partition)."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any setting."),
]


def config_options(func):
    for option in reversed(_config_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heterofl")
def cli() -> None:
    """HeteroFL (Diao, Ding, Tarokh, ICLR 2021): heterogeneous-width federated learning."""


@cli.command()
@click.option("--dataset", required=True, help=_DATASET_HELP)
@click.option("--split", "split", required=True, help="iid, non-iid-K, dirichlet-A or none.")
@click.option("--num-users", type=int, required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--variant", default="reference", show_default=True, help="non-iid-K: reference or distinct.")
@click.option("--data-root", default="data", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Partition file (JSON).")
@click.option("--stats", type=click.Path(dir_okay=False), help="Per-client statistics CSV.")
@click.option("--heatmap", type=click.Path(dir_okay=False), multiple=True, help="Heatmap figure (PDF/PNG).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def partition(dataset, split, num_users, seed, variant, data_root, out, stats, heatmap, log_file) -> None:
    """Split a dataset across clients and write the partition file."""
    from heterofl.data import (
        load_dataset,
        make_partition,
        partition_statistics,
        plot_partition_heatmap,
        write_partition,
        write_partition_statistics,
    )
    from heterofl.data.splits import validate_split_mode

    check_outputs({}, {"--out": out, "--stats": stats, "--heatmap": heatmap, "--log": log_file})
    guard_files({"--out": out, "--stats": stats, "--heatmap": heatmap, "--log": log_file})
    _setup_logging(log_file)
    validate_split_mode(split)
    data = load_dataset(dataset, data_root)
    result = make_partition(data, split, num_users, seed, variant)
    write_partition(result, out)
    if stats:
        write_partition_statistics(partition_statistics(result, data), stats)
    for path in heatmap:
        plot_partition_heatmap(result, data, path)
    log.info("partition %s written (%s)", out, result.content_hash)
    click.echo(f"{out}: {num_users} clients, {split}, hash {result.content_hash[:12]}")


def _progress_line(state) -> str:
    row = state.history[-1]
    shown = {
        k: v
        for k, v in row.items()
        if k in ("train_loss", "train_accuracy_masked") or k.endswith(("Global-Accuracy", "Global-Perplexity"))
    }
    return " ".join(f"{k}={v:.3g}" for k, v in list(shown.items())[:4])


@cli.command()
@click.option("--stats", "stats_csv", required=True, type=click.Path(dir_okay=False), help="Statistics CSV.")
@click.option("--out", "outputs", required=True, multiple=True, type=click.Path(dir_okay=False), help="PDF/PNG.")
@click.option("--title", default="")
def heatmap(stats_csv, outputs, title) -> None:
    """Clients x labels heatmap from a partition statistics CSV (no data needed)."""
    from heterofl.data import plot_heatmap_from_statistics

    if not Path(stats_csv).is_file():
        raise HeteroFLError("--stats", f"{stats_csv} does not exist", "a CSV written by 'heterofl partition --stats'")
    check_outputs({}, {"--out": outputs})
    guard_files({"--out": outputs})
    for path in outputs:
        plot_heatmap_from_statistics(stats_csv, path, title)


@cli.command()
@click.option("--devices", "devices_path", required=True, type=click.Path(dir_okay=False), help="Device table (YAML).")
@click.option("--fleet", "fleet_name", required=True, help="A fleet of the device table.")
@click.option("--num-users", required=True, type=click.IntRange(min=1), help="Number of clients.")
@click.option("--seed", required=True, type=int, help="Run seed (the fleet's order of devices).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Fleet file to write (JSON).")
def fleet(devices_path, fleet_name, num_users, seed, out) -> None:
    """Write which device class each client has (a fleet of the device table, for one number of clients and
    seed): the file a run on the simulated clock reads (train --fleet)."""
    from heterofl.devices import assign_fleet, read_device_table, write_fleet

    check_outputs({}, {"--out": out})
    guard_files({"--out": out})
    made = assign_fleet(read_device_table(devices_path), fleet_name, num_users, seed)
    write_fleet(made, out)
    counts = {name: made.devices.count(name) for name in made.classes}
    click.echo(f"{out}: {', '.join(f'{n} {c}' for n, c in counts.items())} ({made.content_hash[:12]})")


@cli.command()
@config_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch (default: torch's choice).")
@click.option("--partition", "partition_path", type=click.Path(dir_okay=False), help="Partition file.")
@click.option(
    "--fleet", "fleet_path", type=click.Path(dir_okay=False), help="Fleet file (heterofl fleet) for --set fleet=NAME."
)
@click.option("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), help="Log file (default: OUT/train.log).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_file, control, dataset, seed, overrides, out, threads, partition_path, fleet_path, device, log_file, quiet
) -> None:
    """Train one configuration (resuming from OUT/checkpoint.pt when present)."""
    import torch

    from heterofl.device import pick_device

    if threads:
        torch.set_num_threads(threads)
    config = build_config(config_file, control, dataset, seed, overrides)
    if partition_path is not None and not Path(partition_path).is_file():
        raise HeteroFLError("partition", f"{partition_path} does not exist", "a file written by 'heterofl partition'")
    if fleet_path is not None or config.fleet is not None:  # a wrong, damaged or missing fleet file, up front
        from heterofl.devices import read_fleet
        from heterofl.federation import check_fleet

        check_fleet(config, read_fleet(fleet_path) if fleet_path is not None else None, training=True)
    pick_device(device)  # reject a bad --device before anything is written
    check_outputs({"--out": out}, {"--log": log_file})
    check_run_folder(out, config)
    log_path = Path(log_file) if log_file else Path(out) / "train.log"
    guard_files({"--log": log_path}, own_run=out, replaces=("train.log",))
    _setup_logging(log_path)  # the file appears at the first line logged
    created = [p for p in (Path(out), *Path(out).parents) if not p.exists()]  # deepest first
    try:
        with run_lock(out):  # a second writer is refused before it logs anything
            _train_with_progress(config, out, partition_path, device, quiet, fleet_path)
    except HeteroFLError:  # refused (data, partition, checkpoint): a new run folder must not stay behind
        _remove_created(created, log_path)
        raise


def _remove_created(created: list[Path], log_path: Path) -> None:
    """Undo the folders a refused ``train`` created (its log included) when nothing else is in them."""
    if not created:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    if log_path.parent in created and log_path.is_file():
        log_path.unlink()
    for folder in created:
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove): keep it and everything above it
            break


def _train_header(config, out) -> str:
    """The first line of ``train``: which run, which method, how many rounds and how often it evaluates."""
    from heterofl.identity import run_name
    from heterofl.methods.registry import method_spec

    every = f"every {config.eval_every} rounds" if config.eval_every > 1 else "every round"
    rates = "every rate" if config.eval_rates == "all" else "the global rate"
    method = method_spec(config.method).label
    if config.feddyn_alpha:
        method += f" with FedDyn (alpha {config.feddyn_alpha:g})"
    return (
        f"{out}: training {run_name(config)} ({config.dataset}, {config.model}) with {method}, "
        f"{config.rounds} rounds, evaluated {every} at {rates}"
    )


def _evaluation_share(history) -> str:
    """How much of the training wall time went to the per-round evaluation: with default settings most of a
    short run, which no other output says."""
    columns = [c for c in ("seconds_train", "seconds_evaluate") if c in history.columns]
    if "seconds_evaluate" not in columns:
        return ""
    spent = history[columns].sum()
    total = float(spent.sum())
    share = float(spent["seconds_evaluate"]) / total if total > 0 else 0.0
    return f" ({share:.0%} of it in per-round evaluation: eval_every and eval_rates set how often and at which rates)"


def _train_with_progress(config, out, partition_path, device, quiet: bool, fleet_path=None) -> None:
    from heterofl.runner import train_run

    click.echo(_train_header(config, out))
    started = time.perf_counter()
    quiet_stream = open(os.devnull, "w") if quiet else contextlib.nullcontext(sys.stderr)  # noqa: SIM115
    with (
        quiet_stream as stream,
        click.progressbar(  # the null stream is closed, not left to the collector
            length=config.rounds,
            label=config.control.format(),
            show_eta=True,
            show_pos=True,
            file=stream,
            item_show_func=lambda line: line,
        ) as bar,
    ):
        previous = {"round": None}

        def on_round(state) -> None:
            if previous["round"] is None:
                bar.update(state.round - 1)
            previous["round"] = state.round
            bar.update(1, _progress_line(state))
            log.info("round %d: %s", state.round, _progress_line(state))

        history = train_run(config, out, partition_path, device, on_round, fleet_path)
    seconds = time.perf_counter() - started
    click.echo(f"{out}: {config.rounds} rounds in {seconds:.1f} s{_evaluation_share(history)}")


@cli.command()
@click.option("--run", "run_path", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output CSV (default: RUN/eval.csv).")
@click.option("--partition", "partition_path", type=click.Path(dir_okay=False), help="Partition file.")
@click.option("--device")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch (default: torch's choice).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def evaluate(run_path, out, partition_path, device, threads, log_file) -> None:
    """Evaluate a trained run's final model at every rate and summarise its history into eval.csv."""
    import torch

    from heterofl.device import pick_device
    from heterofl.evaluate_run import evaluate_run

    if threads:
        torch.set_num_threads(threads)
    pick_device(device)
    check_outputs({}, {"--out": out or Path(run_path) / "eval.csv", "--log": log_file})
    guard_files({"--out": out or Path(run_path) / "eval.csv"}, own_run=run_path, replaces=("eval.csv",))
    guard_files({"--log": log_file}, own_run=run_path)
    _setup_logging(log_file)
    read_only = read_only_tree(run_path) is not None  # --out elsewhere: a read-only run is only read, not locked
    with contextlib.nullcontext() if read_only else run_lock(run_path):
        frame = evaluate_run(run_path, out, partition_path, device)
    click.echo(f"{out or Path(run_path) / 'eval.csv'}: {len(frame)} rows")


@cli.command()
@click.option("--model", "models", multiple=True, default=model_names(), show_default=True)
@click.option("--resnet-blocks", default="1,1,1,2", show_default=True, help="1,1,1,2 (paper) or 2,2,2,2.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the table (.csv or .md).")
def summarize(models, resnet_blocks, out) -> None:
    """Parameters, FLOPs (reference convention), true MACs and space of every model and rate."""
    import pandas as pd

    from heterofl.model_cost import cost_table, format_table

    try:
        blocks = tuple(int(b) for b in resnet_blocks.split(","))
    except ValueError:
        raise HeteroFLError("--resnet-blocks", f"{resnet_blocks!r} is not a list of integers", "1,1,1,2") from None
    if len(blocks) != 4 or any(b < 1 for b in blocks):
        raise HeteroFLError(
            "--resnet-blocks", f"{resnet_blocks!r} is not 4 positive block counts", "1,1,1,2 (paper) or 2,2,2,2"
        )
    check_outputs({}, {"--out": out})
    guard_files({"--out": out})
    tables = []
    for name in models:  # the shipped counts (tests/test_light_install.py recounts them); others counted now
        tables.append(cost_table(name, "-".join(str(b) for b in blocks)))
    table = pd.concat(tables, ignore_index=True)
    text = format_table(table)
    click.echo(text)
    if out:
        from heterofl.io import write_csv, write_text

        write_csv(out, table) if out.endswith(".csv") else write_text(out, text + "\n")


_metric_option = click.option(
    "--metric", default="mean_last_k", show_default=True, type=click.Choice(["final", "best", "mean_last_k"])
)


@cli.command()
@click.option("--runs", "runs_root", default="results/runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--expected", multiple=True, type=click.Path(file_okay=False), help="Run folders that should exist.")
@_metric_option
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def report(runs_root, out_dir, expected, metric, log_file) -> None:
    """Summary, tables (CSV, Markdown, LaTeX) and figures (PDF, PNG) from every finished run under RUNS (any
    folder below it holding config.yaml and eval.csv)."""
    from heterofl.report import build_report
    from heterofl.report.collect import check_runs_root

    check_runs_root(runs_root)  # one line naming the layout it needs, not an empty report
    check_outputs({"--out": out_dir}, {"--log": log_file})
    check_folder_output(out_dir, "--out")
    guard_files({"--log": log_file})
    _setup_logging(log_file)
    written = build_report(runs_root, out_dir, metric, list(expected))
    click.echo(f"{len(written)} files written under {out_dir}")


@cli.command()
@click.option("--run", "folders", multiple=True, type=click.Path(file_okay=False), help="A run folder to collect.")
@click.option("--expected", multiple=True, type=click.Path(file_okay=False), help="Run folder: collect if finished.")
@click.option("--out", "summary_dir", required=True, type=click.Path(file_okay=False), help="Summary folder.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def collect(folders, expected, summary_dir, log_file) -> None:
    """Collect run folders into runs.csv, history.csv, cost.csv (bytes and MACs per round) and missing_runs.txt
    (expected but unfinished)."""
    from heterofl.report import write_summary

    check_outputs({"--out": summary_dir}, {"--log": log_file})
    check_folder_output(summary_dir, "--out")
    guard_files({"--log": log_file})
    _setup_logging(log_file)
    write_summary(summary_dir, folders=[*folders, *expected], expected=list(expected))
    click.echo(f"{summary_dir}: summary of {len(folders) + len(expected)} run folders written")


# The command's name before 0.2 (it collects; "aggregate" is the server's mean, aggregation.py): still accepted.
cli.add_command(
    click.Command(
        "aggregate", callback=collect.callback, params=collect.params, help="Old name of collect.", hidden=True
    )
)


def _require_runs(runs_csv: str) -> None:
    """A summary of no finished run would make tables and figures of nothing, with exit 0."""
    from heterofl.csv_checks import read_summary_runs, require_rows

    require_rows(read_summary_runs(runs_csv), runs_csv, "--runs-csv", "a runs.csv of at least one finished run")


@cli.command()
@click.option("--runs-csv", required=True, type=click.Path(dir_okay=False))
@_metric_option
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option(
    "--figures",
    multiple=True,
    type=click.Path(),
    help="A figure (PDF/PNG) or a folder of figures, written before: listed in index.md. Repeatable.",
)
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def tables(runs_csv, metric, out, figures, log_file) -> None:
    """Paper-style tables from a summary runs.csv (no training, no data needed)."""
    from heterofl.report import write_tables

    _require_runs(runs_csv)
    check_outputs({"--out": out}, {"--log": log_file})
    check_folder_output(out, "--out")
    guard_files({"--log": log_file})
    _setup_logging(log_file)
    click.echo(f"{len(write_tables(runs_csv, out, metric, figures))} files written under {out}")


@cli.command()
@click.option("--runs-csv", required=True, type=click.Path(dir_okay=False))
@click.option("--history-csv", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--cost-csv", type=click.Path(dir_okay=False), help="Bytes and MACs per round [default: cost.csv beside history]."
)
@_metric_option
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def figures(runs_csv, history_csv, cost_csv, metric, out, log_file) -> None:
    """Figures from the summary CSVs (no training, no data needed)."""
    from heterofl.report import write_figures

    _require_runs(runs_csv)
    check_outputs({"--out": out}, {"--log": log_file})
    check_folder_output(out, "--out")
    guard_files({"--log": log_file})
    _setup_logging(log_file)
    click.echo(f"{len(write_figures(runs_csv, history_csv, out, metric, cost_csv))} files written under {out}")


@cli.command()
@click.option("--benchmarks", required=True, type=click.Path(file_okay=False), help="ROOT/benchmarks of a pipeline.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Every job's time and memory (CSV).")
@click.option("--md", "md_out", required=True, type=click.Path(dir_okay=False), help="The per-step summary (Markdown).")
def jobs(benchmarks, out, md_out) -> None:
    """Time and memory of the pipeline's training and evaluation jobs (its benchmark files), per step."""
    from heterofl.report.jobs import write_job_resources

    check_outputs({}, {"--out": out, "--md": md_out})
    guard_files({"--out": out, "--md": md_out})
    summary = write_job_resources(benchmarks, out, md_out)
    steps = ", ".join(f"{row.jobs} {row.step} jobs {row.total_hours:.2f} h" for row in summary.itertuples())
    click.echo(f"{out}: {steps or 'no benchmarked job'}")


@cli.command()
@click.option("--plan", required=True, type=click.Path(dir_okay=False, exists=True), help="ROOT/logs/plan.txt.")
@click.option("--benchmarks", required=True, type=click.Path(file_okay=False), help="ROOT/benchmarks of a pipeline.")
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(min=1), help="Jobs that run at once.")
def progress(plan, benchmarks, parallel) -> None:
    """One line: runs trained of a grid's plan and an estimate of the time left (the pipeline prints it after
    every training job)."""
    from heterofl.report.progress import progress_line

    click.echo(progress_line(plan, benchmarks, parallel))


@cli.command()
@click.option("--run", "folders", required=True, multiple=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Scratch folder for the retrained runs.")
@click.option("--tolerance", default=1.0, show_default=True, type=click.FloatRange(min=0), help="Accuracy points.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: the original's, per step).")
@click.option("--device", help="cpu, cuda, cuda:N (default: cuda when available).")
@click.option("--log", "log_file", type=click.Path(dir_okay=False))
def reproduce(folders, out, tolerance, threads, device, log_file) -> None:
    """Retrain finished runs from their config.yaml into OUT and compare with the originals.

    Exit code 1 when a run differs by more than TOLERANCE accuracy points; OUT/comparison.csv has the numbers.
    """
    import pandas as pd

    from heterofl.device import pick_device
    from heterofl.io import write_csv
    from heterofl.reproduce import compare_runs, describe, original_config, recorded_partition, retrain

    for folder in folders:
        original_config(folder)  # every run readable, and its partition the recorded one, before any training
        recorded_partition(folder)
    pick_device(device)
    check_outputs({"--out": out}, {"--log": log_file})
    check_folder_output(out, "--out")
    guard_files({"--log": log_file})
    for index in range(len(folders)):
        check_folder_output(Path(out) / f"run{index}", "--out")
    _setup_logging(log_file)
    rows, outside = [], 0
    for index, folder in enumerate(folders):
        target = Path(out) / f"run{index}"
        retrain(folder, target, device, threads)
        comparison = compare_runs(folder, target, tolerance)
        rows.append({**comparison.row(), "retrained": str(target)})
        outside += not comparison.within
        click.echo(describe(comparison, folder))
    write_csv(Path(out) / "comparison.csv", pd.DataFrame(rows))
    if outside:
        raise RunFailed(f"{outside} of {len(folders)} runs differ by more than {tolerance:g} accuracy points")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors, exit 2 for bad input or an unwritable output, 1 for a failed run."""
    try:
        cli.main(args=argv, prog_name="heterofl", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return 2
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except HeteroFLError as error:
        click.echo(f"error: {error}", err=True)
        return 2
    except RunFailed as error:
        click.echo(f"error: {error}", err=True)
        return 1
    except ModuleNotFoundError as error:  # the figures-only install has no PyTorch: say how to add it
        if (error.name or "").split(".")[0] not in ("torch", "torchvision", "mlxtend"):
            raise
        click.echo(f"error: this command needs PyTorch ({error}): {_TRAIN_INSTALL}", err=True)
        return 2
    except OSError as error:  # a full disk, a read-only folder: one line naming the path, not a traceback
        line = os_error_line(error)
        if line is None:
            raise
        click.echo(f"error: {line}", err=True)
        return 2
    return 0


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()

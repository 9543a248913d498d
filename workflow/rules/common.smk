import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

from heterofl.data.registry import is_language, wildcard_pattern
from heterofl.devices import read_device_table
from heterofl.grid import expand_runs, settings_arguments
from heterofl.errors import HeteroFLError
from heterofl.identity import RUN_NAME_PATTERN
from heterofl.results import RUN_KEY_PATTERN, run_key_of
from heterofl.pipeline_config import check as check_pipeline_config
from heterofl.report.kinds import REPORT_CAPTIONS, report_subcategory
from heterofl.results_roots import (
    changed_settings,
    check_owner,
    check_roots,
    claim,
    damaged_run_files,
    is_finished,
    run_sources,
)

# One line per problem, before anything is planned (Snakemake's validate would print a jsonschema dump).
_problems = check_pipeline_config(
    config,
    Path(workflow.basedir) / "schemas" / "config.schema.yaml",
    workflow.configfiles,
)
if _problems:
    for _line in _problems:
        print(f"error: {_line}", file=sys.stderr)
    sys.exit(2)
# Snakemake's validate now only fills in the schema's defaults.
validate(config, schema="../schemas/config.schema.yaml")
try:
    RUNS = {run.key: run for run in expand_runs(config)}
except HeteroFLError as _error:
    print(f"error: {_error}", file=sys.stderr)
    sys.exit(2)

# Every fleet a run names must be in the device table (one line, before anything is planned).
_fleets = sorted(
    {run.config.fleet for run in RUNS.values() if run.config.fleet is not None}
)
if _fleets:
    try:
        _table = read_device_table(config["devices"])
        _unknown = [name for name in _fleets if name not in _table.fleets]
        if _unknown:
            raise HeteroFLError(
                "settings.fleet",
                f"{_unknown[0]!r} is not a fleet of {config['devices']}",
                ", ".join(_table.fleets),
            )
    except HeteroFLError as _error:
        print(f"error: {_error}", file=sys.stderr)
        sys.exit(2)

R = config["results"]
CACHE = config.get("cache")
# Where outputs may go and which finished runs may be read instead of retrained (results_roots.py).
_problems = check_roots(R, CACHE) + check_owner(R, workflow.configfiles)
_plan = run_sources({key: run.config for key, run in RUNS.items()}, R, CACHE)
SOURCES = _plan["sources"]
# A damaged metric file the report will read is named before anything runs or is deleted (in the main
# process only: cluster jobs re-read this file, and the main process checked before submitting them).
if workflow.is_main_process:
    for _folder in dict.fromkeys(SOURCES.values()):
        if is_finished(_folder):
            _problems += damaged_run_files(_folder)
    # A run folder of this root that holds other settings (an edited lr, rounds, ...) is named before
    # Snakemake would delete its outputs to rerun it.
    for _key, _run in RUNS.items():
        _changed = changed_settings(f"{R}/runs/{_key}", _run.config)
        if _changed:
            _problems.append(_changed)
if _problems:
    for _line in _problems:
        print(f"error: {_line}", file=sys.stderr)
    sys.exit(2)
if workflow.is_main_process and _plan["reasons"] and _plan["cached"]:
    _why = sorted(set(_plan["reasons"].values()))
    print(
        f"{len(_plan['cached'])} runs read from the cache {CACHE}; {len(_plan['reasons'])} will be trained into"
        f" {R} ({'; '.join(_why)})",
        file=sys.stderr,
    )
# A run's folder and its logs, as wildcard patterns (the one definition: heterofl.results.RUN_KEY_PATTERN).
RUN_FOLDER = f"{R}/runs/{RUN_KEY_PATTERN}"
TRAIN_LOG = f"{R}/logs/train/{RUN_KEY_PATTERN}.log"
EVALUATE_LOG = f"{R}/logs/evaluate/{RUN_KEY_PATTERN}.log"
# Each job's wall time, peak memory and CPU time (Snakemake's benchmark files), summarised by rule job_resources.
TRAIN_BENCHMARK = f"{R}/benchmarks/train/{RUN_KEY_PATTERN}.tsv"
EVALUATE_BENCHMARK = f"{R}/benchmarks/evaluate/{RUN_KEY_PATTERN}.tsv"
PARTITIONS = sorted({run.partition_key for run in RUNS.values()})
IMAGE_PARTITIONS = [p for p in PARTITIONS if not is_language(p.split("/", 1)[0])]


wildcard_constraints:
    dataset=wildcard_pattern(),
    split=r"iid|none|non-iid-\d+|dirichlet-[0-9.]+",
    seed=r"\d+",
    users=r"\d+",
    run=RUN_NAME_PATTERN,
    fleet=r"[A-Za-z0-9_.-]+",


def run_of(wildcards):
    key = run_key_of(wildcards.dataset, wildcards.model, wildcards.run, wildcards.seed)
    if key not in RUNS:
        raise ValueError(f"{key} is not a run of this config")
    return RUNS[key]


def run_dir(key):
    return f"{R}/runs/{key}"


def partition_of(wildcards):
    return f"{R}/partitions/{run_of(wildcards).partition_key}.json"


def fleet_of(wildcards):
    """The fleet file of a run on the simulated clock (settings: fleet), none otherwise."""
    run = run_of(wildcards).config
    if run.fleet is None:
        return []
    return f"{R}/fleets/{run.fleet}/users{run.control.num_users}_seed{run.seed}.json"


def fleet_argument(wildcards, input):
    return f"--fleet {shlex.quote(input.fleet)}" if input.fleet else ""


def ancient_partition_of(wildcards):
    return ancient(partition_of(wildcards))


def settings_of(wildcards):
    return settings_arguments(run_of(wildcards))


def control_of(wildcards):
    return run_of(wildcards).control


def source_dirs():
    """The folder each run is reported from: this root's own, or the read-only cache's."""
    return [str(SOURCES[key]) for key in RUNS]


def trained_here():
    """Runs this root trains (all of them when there is no cache)."""
    return [key for key in RUNS if SOURCES[key] == Path(run_dir(key))]


def all_run_files():
    """Every run's evaluation and model, except runs read from the cache (a fresh clone trains nothing)."""
    return [
        f"{run_dir(key)}/{name}"
        for key in trained_here()
        for name in ("eval.csv", "model.pt")
    ]


def report_input_files():
    """The small metric files the summary is built from (cached or this root's)."""
    return [
        f"{folder}/{name}"
        for folder in source_dirs()
        for name in ("eval.csv", "history.csv", "config.yaml")
    ]


def expected_runs_argument():
    return " ".join(f"--expected {shlex.quote(folder)}" for folder in source_dirs())


def partition_stats(partition):
    """This root's partition statistics, or the cache's when this root has none (drawing needs no data)."""
    own = f"{R}/partitions/{partition}.stats.csv"
    cached = f"{CACHE}/partitions/{partition}.stats.csv" if CACHE else None
    if not Path(own).is_file() and cached and Path(cached).is_file():
        return cached
    return own


def heatmap_files():
    return [
        f"{R}/figures/partitions/{'_'.join(Path(p).parts)}.{ext}"
        for p in IMAGE_PARTITIONS
        for ext in ("pdf", "png")
    ]


def report_outputs():
    return [
        f"{R}/summary/runs.csv",
        f"{R}/summary/history.csv",
        f"{R}/summary/cost.csv",
        f"{R}/tables",
        f"{R}/figures/results",
        *heatmap_files(),
    ]


def report_kind(wildcards):
    """The report's subcategory of a table or figure, from its file stem (a wildcard of report patterns): the
    figure table (heterofl.report.figures.registry) and the table kinds (heterofl.report.kinds) declare it.
    """
    return report_subcategory(wildcards.name)


def in_root(*parts):
    """A path under the results root, quoted for the shell (spaces, Unicode)."""
    return shlex.quote(os.path.join(R, *parts))


PLAN = f"{R}/logs/plan.txt"
"""The runs this root trains, one folder per line: what the progress line after every training job counts."""


def _train_slots():
    """Training jobs at once: --cores over a job's threads here, --jobs on a cluster (which has no --cores)."""
    settings = workflow.resource_settings
    if settings.cores:
        return max(
            1,
            int(settings.cores) // max(1, int(config["resources"]["train"]["threads"])),
        )
    return max(1, int(settings.nodes or 1))


PARALLEL_TRAIN = _train_slots()
"""The progress line's jobs at once (an estimate: a cluster's queue is not counted)."""


def write_plan():
    """Write PLAN when the pipeline starts (the main process; jobs only read it); nothing when nothing trains."""
    if not trained_here():
        return
    os.makedirs(os.path.dirname(PLAN), exist_ok=True)
    with open(PLAN, "w") as handle:
        handle.writelines(f"{run_dir(key)}\n" for key in trained_here())

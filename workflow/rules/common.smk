import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

from heterofl.data.registry import is_language, wildcard_pattern
from heterofl.grid import expand_runs, settings_arguments
from heterofl.errors import HeteroFLError
from heterofl.identity import RUN_NAME_PATTERN
from heterofl.pipeline_config import check as check_pipeline_config

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

R = config["results"]
PARTITIONS = sorted({run.partition_key for run in RUNS.values()})
IMAGE_PARTITIONS = [p for p in PARTITIONS if not is_language(p.split("/", 1)[0])]


wildcard_constraints:
    dataset=wildcard_pattern(),
    split=r"iid|none|non-iid-\d+|dirichlet-[0-9.]+",
    seed=r"\d+",
    users=r"\d+",
    run=RUN_NAME_PATTERN,


def run_of(wildcards):
    key = f"{wildcards.dataset}/{wildcards.model}/{wildcards.run}/seed{wildcards.seed}"
    if key not in RUNS:
        raise ValueError(f"{key} is not a run of this config")
    return RUNS[key]


def run_dir(key):
    return f"{R}/runs/{key}"


def partition_of(wildcards):
    return f"{R}/partitions/{run_of(wildcards).partition_key}.json"


def ancient_partition_of(wildcards):
    return ancient(partition_of(wildcards))


def settings_of(wildcards):
    return settings_arguments(run_of(wildcards))


def control_of(wildcards):
    return run_of(wildcards).control


def all_eval_files():
    return [f"{run_dir(key)}/eval.csv" for key in RUNS]


def all_run_files():
    """Every run's evaluation and model: `all` retrains runs whose model is missing (a fresh clone)."""
    return [
        f"{run_dir(key)}/{name}" for key in RUNS for name in ("eval.csv", "model.pt")
    ]


def cached_run_files():
    """The small metric files of every run (committed for the default grid)."""
    return [
        f"{run_dir(key)}/{name}"
        for key in RUNS
        for name in ("eval.csv", "history.csv", "config.yaml")
    ]


def expected_runs_argument():
    return " ".join(f"--expected {shlex.quote(run_dir(key))}" for key in RUNS)


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
        f"{R}/tables",
        f"{R}/figures/results",
        *heatmap_files(),
    ]

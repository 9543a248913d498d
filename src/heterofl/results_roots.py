"""Which results tree the pipeline writes, and which read-only trees it may read finished runs from.

Results are weeks of GPU time, so the pipeline never writes where it did not create:

* a *read-only tree* (the committed results, ``results/committed``) carries a ``.read-only`` marker; no
  config may write into it, and Snakemake reads finished runs from it (``cache:``) instead of retraining;
* a *results root* belongs to the config file that first ran in it (``.heterofl-root.yaml``); another
  config pointing at the same root is refused, so it cannot delete or rewrite that config's tables.

Each check returns problems as one line each, for the planning step to print before any work.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from heterofl.config import ExperimentConfig
from heterofl.csv_checks import read_run_eval, read_run_history
from heterofl.errors import HeteroFLError
from heterofl.io import write_yaml
from heterofl.output_paths import shown_path
from heterofl.report import collect
from heterofl.results import RUN_FILES
from heterofl.settings_file import read_yaml_config
from heterofl.write_guard import READ_ONLY_MARKER as READ_ONLY_MARKER  # re-exported: the pipeline names it
from heterofl.write_guard import read_only_tree

OWNER_FILE = ".heterofl-root.yaml"
OUTPUT_FOLDERS = ("partitions", "runs", "summary", "tables", "figures", "logs")


def check_roots(results: str, cache: str | None) -> list[str]:
    """The output root must not be read-only; the cache must exist and not overlap the root's outputs."""
    problems = []
    root = Path(results)
    if root.exists() and not root.is_dir():
        problems.append(f"results: {results} is a file, not a folder; allowed: a folder path, e.g. results")
    elif root.resolve() == Path(root.resolve().anchor) or root.resolve() == Path.home().resolve():
        problems.append(
            f"results: {results} is {'the filesystem root' if root.resolve().parent == root.resolve() else 'your home'}"
            " folder; the pipeline would write partitions/, runs/, logs/ ... straight into it; allowed: a folder of"
            " its own, e.g. results"
        )
    protected = read_only_tree(results)
    if protected is not None:
        problems.append(
            f"results: {results} is inside the read-only results tree {shown_path(protected)} "
            "(committed results); allowed: a folder outside it, e.g. results or results/<name>"
        )
    if cache is None:
        return problems
    cache_path, root = Path(cache).resolve(), Path(results).resolve()
    if not cache_path.is_dir():
        problems.append(f"cache: {cache} is not a folder; allowed: a results tree with runs/ (or null for none)")
    elif cache_path == root or root in cache_path.parents and cache_path.relative_to(root).parts[0] in OUTPUT_FOLDERS:
        problems.append(f"cache: {cache} overlaps the outputs of results: {results}; allowed: a separate tree")
    elif cache_path in root.parents:
        problems.append(f"results: {results} is inside cache: {cache}; allowed: a folder outside the cache")
    return problems


def _config_id(configfiles: Iterable[str | Path]) -> list[str]:
    return sorted(dict.fromkeys(shown_path(Path(f).resolve()) for f in configfiles))


def check_owner(results: str, configfiles: Iterable[str | Path]) -> list[str]:
    """A root that another config file ran in is refused (it would delete or rewrite that config's outputs)."""
    owner_file = Path(results) / OWNER_FILE
    if not owner_file.is_file():
        return []
    try:
        owner = read_yaml_config(owner_file).get("configfiles") or []
    except HeteroFLError:
        return [f"results: {owner_file} is damaged; allowed: delete it if {results} holds nothing you need"]
    mine = _config_id(configfiles)
    if sorted(owner) == mine:
        return []
    return [
        f"results: {results} holds the outputs of {', '.join(owner)} (see {owner_file}), not of {', '.join(mine)}; "
        f"allowed: give this config its own root (results: {results}/<name>)"
    ]


def claim(results: str, configfiles: Iterable[str | Path]) -> None:
    """Record which config file owns ``results`` (first real run only; a dry run writes nothing)."""
    owner_file = Path(results) / OWNER_FILE
    if owner_file.is_file():
        return
    write_yaml(
        owner_file,
        {
            "configfiles": _config_id(configfiles),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "user": os.environ.get("USER", ""),
        },
    )


def is_finished(folder: str | Path) -> bool:
    """Finished for the report (``collect.is_finished``) with the history its learning curves need."""
    return collect.is_finished(folder) and (Path(folder) / RUN_FILES["history"]).is_file()


def damaged_run_files(folder: str | Path) -> list[str]:
    """Problems with a finished run's metric files, one line each, by the same checks as ``heterofl collect``
    (``csv_checks``): names the file, and the row and column of a value that is not a finite number."""
    folder = Path(folder)
    problems = []
    checks = (
        ("config", lambda path: ExperimentConfig.from_dict(read_yaml_config(path))),
        ("history", read_run_history),
        ("eval", read_run_eval),
    )
    for name, check in checks:
        try:
            check(folder / RUN_FILES[name])
        except HeteroFLError as error:
            problems.append(str(error) if name != "config" else f"{folder / RUN_FILES[name]} is damaged: {error}")
    return problems


def changed_settings(folder: str | Path, config: ExperimentConfig) -> str | None:
    """The problem line when ``folder`` already holds a run (its ``config.yaml``) of other result-defining
    settings than ``config``, None otherwise.

    A setting that is not part of the run's name (``lr``, ``rounds``, ...) keeps the folder, so without this the
    train job of the changed config would start in it, and Snakemake deletes a job's outputs before it runs:
    the finished run's history and model would be lost before ``train`` refused its checkpoint."""
    path = Path(folder) / RUN_FILES["config"]
    if not path.is_file():
        return None
    try:
        there = ExperimentConfig.from_dict(read_yaml_config(path))
    except HeteroFLError as error:
        return f"{shown_path(path)} is damaged: {error}"
    if there.config_hash() == config.config_hash():
        return None
    old, new = there.result_fields(), config.result_fields()
    differ = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    details = ", ".join(f"{key}: {old.get(key)!r} there, {new.get(key)!r} requested" for key in differ)
    return (
        f"{shown_path(folder)} holds a run of other settings ({details}); rerunning it would delete its results."
        " allowed: the changed config in its own results root (results: <another folder>),"
        " or that run folder moved away"
    )


def cached_run(cache: str | Path, key: str, config: ExperimentConfig) -> tuple[Path | None, str]:
    """The cache's folder for run ``key`` if it finished there with the same result-defining settings.

    Returns (folder or None, why not) so the planner can say why a run will be trained.
    """
    folder = Path(cache) / "runs" / key
    if not is_finished(folder):
        return None, "not in the cache"
    try:
        cached = ExperimentConfig.from_dict(read_yaml_config(folder / RUN_FILES["config"]))
    except HeteroFLError as error:
        return None, f"cached config unreadable ({error})"
    if cached.config_hash() != config.config_hash():
        return None, "settings differ from the cached run's"
    return folder, ""


def run_sources(runs: dict[str, ExperimentConfig], results: str, cache: str | None) -> dict[str, Any]:
    """For every run key: the folder the report reads (this root's if finished there, else the cache's, else
    this root's, to be trained), plus which came from the cache and why others did not."""
    sources: dict[str, Path] = {}
    cached: list[str] = []
    reasons: dict[str, str] = {}
    for key, config in runs.items():
        own = Path(results) / "runs" / key
        if is_finished(own) or cache is None:
            sources[key] = own
            continue
        folder, why = cached_run(cache, key, config)
        if folder is None:
            sources[key], reasons[key] = own, why
        else:
            sources[key] = folder
            cached.append(key)
    return {"sources": sources, "cached": cached, "reasons": reasons}

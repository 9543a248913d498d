"""The one check every writing command makes first: it never writes over results it did not make.

Results are weeks of compute, and the CLI writes wherever it is pointed, so before any work each output
path is refused (one :class:`HeteroFLError` naming the option, the path and what to do instead) when:

* it lies in a tree marked read-only (a ``.read-only`` file in it or a parent; the committed results),
  judged after resolving symlinks, so a link into that tree does not get around it;
* the file itself is a symlink (appending to it would write to wherever it points);
* it is an existing result file of another kind (``evaluate --out RUN/history.csv``);
* it is inside a run folder other than the one the command works on (``reproduce --out RUN``,
  ``train --log OTHER_RUN/history.csv``);
* it is a run folder holding a started or finished run of another configuration (config hash of its
  ``config.yaml``, whether or not a checkpoint is there), or run files whose configuration is unknown.

Nothing here writes or creates anything; every check is a few ``stat`` calls and, for a run folder, one
small YAML read.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.results import CHECKPOINT, DIVERGED, FAILED, RUN_FILES
from heterofl.settings_file import read_yaml_config

READ_ONLY_MARKER = ".read-only"
PROVENANCE_FILE = "provenance.yaml"  # provenance.FILE, named here so the guard imports no torch
RESULT_FILES = frozenset(
    {
        *RUN_FILES.values(),
        CHECKPOINT,
        PROVENANCE_FILE,
        FAILED,
        DIVERGED,
        ".lock",
        "runs.csv",
        "cost.csv",
        "clock.csv",
        "missing_runs.txt",
        "comparison.csv",
        ".heterofl-root.yaml",
    }
)
"""File names that are results of some command; an output may replace one only if it is of its own kind."""
_RUN_WRITES = ("train.log", PROVENANCE_FILE, *RUN_FILES.values(), CHECKPOINT, FAILED, DIVERGED)


def read_only_tree(path: str | Path) -> Path | None:
    """The read-only tree that ``path`` is in (itself or a parent carries the marker), symlinks resolved."""
    resolved = Path(path).resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / READ_ONLY_MARKER).is_file():
            return folder
    return None


def is_run_folder(folder: Path) -> bool:
    """A started run (a checkpoint) or a finished one (model, or config with history); a lone config.yaml,
    as a project folder may hold, is not one."""
    if (folder / CHECKPOINT).is_file() or (folder / RUN_FILES["model"]).is_file():
        return True
    return (folder / RUN_FILES["config"]).is_file() and (folder / RUN_FILES["history"]).is_file()


def _check_read_only(path: Path, field: str) -> None:
    tree = read_only_tree(path)
    if tree is not None:
        where = "" if path.resolve() == path.absolute() else f" (it resolves to {path.resolve()})"
        raise HeteroFLError(
            field,
            f"{path} is inside the read-only results tree {tree}{where}; it is never written to",
            "a path outside it, e.g. under results/",
        )


def _check_outside_runs(path: Path, field: str, own_run: Path | None, include_self: bool) -> None:
    """Refuse ``path`` inside (or, with ``include_self``, being) a run folder other than ``own_run``."""
    resolved = path.resolve()
    own = own_run.resolve() if own_run is not None else None
    candidates = (resolved, *resolved.parents) if include_self else resolved.parents
    for folder in candidates:
        if folder == own:
            return  # inside the run the command works on; what lies above it is that run's business
        if is_run_folder(folder):
            what = "is the run folder" if folder == resolved else "is inside the run folder"
            raise HeteroFLError(
                field,
                f"{path} {what} {folder}, which holds another run's results",
                "a path outside every run folder",
            )


def check_file_output(
    path: str | Path, field: str, own_run: str | Path | None = None, replaces: Collection[str] = ()
) -> None:
    """Refuse writing the file ``path``: read-only tree, a symlink, an existing result file of another kind
    (its name is in :data:`RESULT_FILES` but not in ``replaces``), or inside a run folder not ``own_run``."""
    path = Path(path)
    _check_read_only(path, field)
    if path.is_symlink():
        raise HeteroFLError(
            field, f"{path} is a symbolic link (to {path.resolve()}); writing would go through it", "a regular file"
        )
    if path.name in RESULT_FILES and path.name not in replaces and path.exists():
        raise HeteroFLError(
            field,
            f"{path} is an existing result file ({path.name}) that this command does not write",
            f"a new file name{', e.g. ' + next(iter(replaces)) if replaces else ''}",
        )
    _check_outside_runs(path, field, Path(own_run) if own_run is not None else None, include_self=False)


def check_folder_output(path: str | Path, field: str) -> None:
    """Refuse writing into the folder ``path`` (summaries, tables, figures, reproductions): read-only tree,
    a run folder, or inside one."""
    path = Path(path)
    _check_read_only(path, field)
    _check_outside_runs(path, field, None, include_self=True)


def check_run_folder(path: str | Path, config: ExperimentConfig, field: str = "--out") -> None:
    """Refuse training ``config`` into ``path`` when it is read-only, nested in another run, has a symlink
    where the run writes a file, or holds a run of another configuration (or run files of an unknown one)."""
    path = Path(path)
    _check_read_only(path, field)
    _check_outside_runs(path, field, None, include_self=False)
    for name in _RUN_WRITES:
        if (path / name).is_symlink():
            raise HeteroFLError(
                field,
                f"{path / name} is a symbolic link (to {(path / name).resolve()}); writing would go through it",
                "a run folder of regular files",
            )
    config_file = path / RUN_FILES["config"]
    if config_file.is_file():
        try:
            existing = ExperimentConfig.from_dict(read_yaml_config(config_file))
        except HeteroFLError as error:
            raise HeteroFLError(
                field, f"{path} holds a run whose {config_file.name} cannot be read ({error})", "another --out folder"
            ) from None
        if existing.config_hash() != config.config_hash():
            theirs, mine = existing.result_fields(), config.result_fields()
            differ = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            details = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} requested" for k in differ)
            raise HeteroFLError(
                field,
                f"{path} holds a run of another configuration ({details})",
                "another --out folder; delete this one first only if its results are not needed",
            )
    elif not (path / CHECKPOINT).exists():  # a checkpoint is checked against the config when it is read
        orphans = [RUN_FILES[key] for key in ("history", "eval", "model") if (path / RUN_FILES[key]).exists()]
        if orphans:
            raise HeteroFLError(
                field,
                f"{path} holds {', '.join(orphans)} of a run with no config.yaml (its configuration is unknown)",
                "another --out folder",
            )

"""Output paths, checked before any work: every folder or file a command will write must be writable.

A path under an existing *file*, a file where a folder is wanted (or the reverse), or a folder that is
read-only (permissions or a read-only filesystem) is refused in one line naming the option and the path,
before any data is loaded and before anything is created. Nothing here creates a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from heterofl.errors import HeteroFLError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or "/")


def read_only_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot take new files (None when it can): a read-only filesystem or permissions."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "is on a read-only filesystem"
    except OSError:
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable (permission denied)"
    return None


def check_output(path: str | Path, field: str, folder: bool) -> None:
    """Refuse ``path`` (a folder when ``folder``, else a file) if it cannot be created or written."""
    shown = Path(path)
    absolute = Path(os.path.abspath(shown))
    check_name_lengths(absolute, field, shown)
    kind = "a folder" if folder else "a file"
    existing = _nearest_existing(absolute)
    if existing == absolute:
        if folder and not existing.is_dir():
            raise HeteroFLError(field, f"{shown} is a file, not a folder", "a folder path")
        if not folder and existing.is_dir():
            raise HeteroFLError(field, f"{shown} is a folder, not a file", "a file path")
        target = existing if folder else existing.parent
    elif not existing.is_dir():
        raise HeteroFLError(
            field, f"{shown} is under {shown_path(existing)}, which is a file, not a folder", f"{kind} path"
        )
    else:
        target = existing
    reason = read_only_reason(target)
    if reason is not None:
        raise HeteroFLError(field, f"{shown} cannot be written: {shown_path(target)} {reason}", "a writable folder")


def check_name_lengths(absolute: Path, field: str, shown: Path) -> None:
    """Refuse a path with a file or folder name longer than its filesystem allows (255 bytes on most)."""
    for index, part in enumerate(absolute.parts):
        size = len(os.fsencode(part))
        if size <= 14:  # POSIX's smallest NAME_MAX: no filesystem refuses these
            continue
        try:
            limit = os.pathconf(_nearest_existing(Path(*absolute.parts[:index])), "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        if size > limit:
            raise HeteroFLError(
                field,
                f"{shown} has a name of {size} bytes ({part[:24]}...), longer than the {limit} the filesystem allows",
                f"names of at most {limit} bytes",
            )


def shown_path(path: str | Path) -> str:
    """A path as the user would type it from the working directory (as given when outside it)."""
    path = Path(path)
    for base in (Path.cwd(), Path.cwd().resolve()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


def check_outputs(folders: dict[str, str | Path | None], files: dict[str, str | Path | None] | None = None) -> None:
    """:func:`check_output` for every given folder and file option (``None`` values are skipped)."""
    for field, path in folders.items():
        if path is not None:
            check_output(path, field, folder=True)
    for field, path in (files or {}).items():
        for one in path if isinstance(path, list | tuple) else [path]:
            if one is not None:
                check_output(one, field, folder=False)

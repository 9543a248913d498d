"""Which code, versions and hardware produced a result, so drift can be told apart from float noise.

Every training session and every evaluation adds a record to the run folder's ``provenance.yaml``; the
summary carries the last training session's record (:func:`summary_fields`).
"""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heterofl.io import write_yaml
from heterofl.settings_file import read_yaml_config

if TYPE_CHECKING:  # recorded by training only: the report reads provenance files without PyTorch
    import torch

FILE = "provenance.yaml"
SUMMARY_FIELDS = (
    "code_version",
    "code_commit",
    "code_dirty",
    "python",
    "torch",
    "numpy",
    "hardware",
    "threads",
    "engine",
)


def code_version() -> tuple[str, str | None, bool | None]:
    """(package version, git commit, dirty flag); commit and flag are None outside a git checkout.

    Dirty means tracked files differ from the commit (untracked outputs such as results do not count).
    """
    version = metadata.version("heterofl")
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return version, None, None
    return version, commit, bool(status.strip())


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device | str) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{cpu_model()} ({platform.machine()})"


def record(step: str, device: torch.device | str, engine: str, **extra: Any) -> dict[str, Any]:
    """One provenance record: code, library versions, hardware, threads and engine of this process."""
    import torch

    version, commit, dirty = code_version()
    return {
        "step": step,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": version,
        "code_commit": commit,
        "code_dirty": dirty,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "platform": f"{platform.system()} {platform.release()}",
        "hardware": hardware(device),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "engine": engine,
        "argv": " ".join(sys.argv[1:])[:500],
        **extra,
    }


def read(folder: str | Path) -> list[dict[str, Any]]:
    """The run's records, oldest first; [] for a run from before provenance was recorded."""
    path = Path(folder) / FILE
    if not path.is_file():
        return []
    records = read_yaml_config(path).get("records") or []
    return [r for r in records if isinstance(r, dict)]


def trained_partition(folder: str | Path) -> dict[str, Any]:
    """The partition the run's last training session used: ``path`` (None: made from the seed), ``content_hash``
    and ``seed``; empty for a run trained before it was recorded."""
    trained = [r for r in read(folder) if r.get("step") == "train"]
    recorded = trained[-1].get("partition") if trained else None
    return recorded if isinstance(recorded, dict) else {}


def trained_config_hash(folder: str | Path) -> str | None:
    """The config hash the run's last training session trained (None for runs trained before it was recorded)."""
    trained = [r for r in read(folder) if r.get("step") == "train"]
    recorded = trained[-1].get("config_hash") if trained else None
    return recorded if isinstance(recorded, str) else None


def append(folder: str | Path, entry: dict[str, Any], fresh: bool = False) -> None:
    """Add a record (atomically: the file is rewritten whole); ``fresh`` drops the records of an earlier run."""
    write_yaml(Path(folder) / FILE, {"records": [*([] if fresh else read(folder)), entry]})


def summary_fields(folder: str | Path) -> dict[str, Any]:
    """The last training session's record, flattened for the summary (empty strings when unknown)."""
    trained = [r for r in read(folder) if r.get("step") == "train"]
    last = trained[-1] if trained else {}
    fields = {name: last.get(name, "") for name in SUMMARY_FIELDS}
    fields["code_commit"] = (fields["code_commit"] or "")[:12]
    fields["train_sessions"] = len(trained)
    return fields

"""The figures-only path (issue 24): the CLI's help and the report commands run without PyTorch.

A subprocess gets a ``sitecustomize`` that refuses every ``torch``/``torchvision`` import, as a base install
(``pip install -e .``, no ``train`` extra) would; the report commands then rebuild the committed cache's summary
and tables, which must equal the committed ones (written by the full install).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from heterofl.model_cost import cost_keys, cost_table, count_cost

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "committed"
BLOCKER = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""


def _without_torch(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    paths = [str(site), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def test_the_blocker_really_refuses_torch(tmp_path) -> None:
    refused = _without_torch(tmp_path, "-c", "import torch", check=False)
    assert refused.returncode != 0 and "No module named 'torch'" in refused.stderr


def test_help_loads_no_torch(tmp_path) -> None:
    shown = _without_torch(tmp_path, "-m", "heterofl", "--help")
    assert "train" in shown.stdout and "figures" in shown.stdout
    code = "import sys, heterofl.cli, heterofl.report, heterofl.pipeline_config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    code = "import sys, heterofl.cli; print(sorted({'torch', 'pandas', 'matplotlib'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_report_commands_rebuild_the_committed_tables_without_torch(tmp_path) -> None:
    out = tmp_path / "report"
    _without_torch(tmp_path, "-m", "heterofl", "report", "--runs", str(COMMITTED / "runs"), "--out", str(out))
    for name in ("runs.csv", "history.csv", "cost.csv"):
        assert (out / "summary" / name).read_bytes() == (COMMITTED / "summary" / name).read_bytes(), name
    committed = sorted(p for p in (COMMITTED / "tables").iterdir() if p.name != "index.md")
    assert committed
    for path in committed:
        assert (out / "tables" / path.name).read_bytes() == path.read_bytes(), path.name
    summary = COMMITTED / "summary"
    runs, history = str(summary / "runs.csv"), str(summary / "history.csv")
    _without_torch(tmp_path, "-m", "heterofl", "tables", "--runs-csv", runs, "--out", str(tmp_path / "t"))
    _without_torch(
        tmp_path,
        "-m",
        "heterofl",
        "figures",
        "--runs-csv",
        runs,
        "--history-csv",
        history,
        "--out",
        str(tmp_path / "f"),
    )
    assert sorted(p.name for p in (tmp_path / "f").glob("*.png")) == sorted(
        p.name for p in (out / "figures").glob("*.png")
    )
    stats = next((COMMITTED / "partitions").rglob("*.stats.csv"))
    _without_torch(tmp_path, "-m", "heterofl", "heatmap", "--stats", str(stats), "--out", str(tmp_path / "h.png"))
    assert (tmp_path / "h.png").stat().st_size > 0


def test_training_without_torch_says_how_to_install_it_in_one_line(tmp_path) -> None:
    refused = _without_torch(
        tmp_path, "-m", "heterofl", "train", "--dataset", "MNIST5k", "--out", str(tmp_path / "run"), check=False
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and ".[train]" in refused.stderr and "whl/cpu" in refused.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key", cost_keys(), ids=lambda key: "-".join(str(k) for k in key if k))
def test_shipped_model_cost_equals_a_fresh_count(key) -> None:
    """The report reads model cost from model_cost.csv (no PyTorch); it must be what the models count today
    (after changing a model: python -m heterofl.model_cost)."""
    fresh = count_cost(*key).drop(columns=["resnet_blocks", "num_classes"])
    pd.testing.assert_frame_equal(cost_table(*key), fresh, check_dtype=False)

"""The package's public API: every name of ``heterofl.__all__`` resolves, and importing the package loads no
torch (the CLI's --help and the report path stay light)."""

from __future__ import annotations

import subprocess
import sys

import heterofl


def test_every_public_name_resolves_to_its_module_object():
    from heterofl.config import ExperimentConfig
    from heterofl.methods.registry import METHODS

    for name in heterofl.__all__:
        assert getattr(heterofl, name) is not None, name
    assert heterofl.ExperimentConfig is ExperimentConfig and heterofl.METHODS is METHODS


def test_importing_the_package_loads_no_torch():
    code = "import sys, heterofl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""The method table is the one place a method is declared: every module of ``methods/`` is registered, every
record is complete, and the configuration, the report and the methods figure read it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import heterofl.methods as methods_package
from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.methods import registry
from heterofl.methods.registry import METHODS, OKABE_ITO, MethodSpec, method_class

PLUMBING = {"__init__", "base", "registry"}


def test_every_method_module_is_registered_and_every_record_is_complete():
    folder = Path(methods_package.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - PLUMBING
    registered = {spec.implementation.split(":")[0].rsplit(".", 1)[1] for spec in METHODS.values()}
    assert modules == registered, "a module in methods/ without a MethodSpec line (or a line without its module)"
    for name, spec in METHODS.items():
        cls = method_class(name)
        assert cls.name == name and callable(cls().select) and callable(cls().step_rates), name
        assert spec.label and spec.marker and spec.hex_color.startswith("#"), name
    assert len({s.color for s in METHODS.values()}) == len(METHODS), "two methods share a colour"
    assert len({s.marker for s in METHODS.values()}) == len(METHODS), "two methods share a marker"


def test_a_record_with_an_unknown_colour_is_refused():
    with pytest.raises(ValueError, match="colour 'pink'"):
        MethodSpec("mine", "Mine", "pink", "P", "heterofl.methods.heterofl:HeteroFL")


def test_config_reads_the_scaler_default_and_who_may_train_unheld_units(monkeypatch):
    base = {"dataset": "MNIST5k", "control": "1_10_0.2_iid_fix_a1_bn_1_1"}
    for name, spec in METHODS.items():
        assert ExperimentConfig.from_dict({**base, "method": name}).uses_scaler is spec.scaler_by_default
    narrow = {**base, "control": "1_10_0.2_iid_fix_c0-e1_bn_1_1"}
    for name, spec in METHODS.items():
        if spec.trains_unheld_units:
            ExperimentConfig.from_dict({**narrow, "method": name})
        else:
            with pytest.raises(HeteroFLError, match="model_mode"):
                ExperimentConfig.from_dict({**narrow, "method": name})
    mine = MethodSpec("mine", "Mine", "yellow", "P", "heterofl.methods.fedrolex:FedRolex", True, False)
    monkeypatch.setitem(METHODS, "mine", mine)
    config = ExperimentConfig.from_dict({**narrow, "method": "mine"})  # a new line is all the config needs
    assert not config.uses_scaler


def test_report_labels_order_and_figure_style_come_from_the_table(monkeypatch):
    from heterofl.report import methods as report_methods
    from heterofl.report.figures.methods import method_colors

    assert list(report_methods.METHOD_ORDER) == list(registry.METHOD_NAMES)
    assert {n: s.label for n, s in METHODS.items()} == report_methods.METHOD_LABELS
    frame = pd.DataFrame({"method": list(METHODS)}, index=[s.label for s in METHODS.values()])
    assert method_colors(frame) == {s.label: OKABE_ITO[s.color] for s in METHODS.values()}

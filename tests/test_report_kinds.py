"""The figure table and the table kinds are the one place that describes a report item: every figure module is
declared, every declaration draws, and index.md, the report's captions and its subcategories read them."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

import heterofl.report.figures as figures_package
from heterofl.report import figure_caption, write_tables
from heterofl.report.figures import FIGURES, drawing_function, figure_spec_of
from heterofl.report.kinds import REPORT_CAPTIONS, TABLE_KINDS, report_subcategory, table_kind_of

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "workflow" / "report"
NOT_FIGURES = {"__init__", "registry", "shared"}  # the package's machinery, not figures


def test_every_figure_module_is_declared_once_and_every_declaration_resolves():
    modules = {p.stem for p in Path(figures_package.__file__).parent.glob("*.py")} - NOT_FIGURES
    drawn = [spec for spec in FIGURES if spec.draw is not None]
    declared = [spec.draw.split(":")[0].rsplit(".", 1)[1] for spec in drawn]
    assert sorted(declared) == sorted(modules)  # a module without a FigureSpec line (or the reverse) fails here
    assert len({spec.stem for spec in FIGURES}) == len(FIGURES)
    for spec in drawn:
        function = drawing_function(spec)
        assert list(inspect.signature(function).parameters) == ["inputs", "dataset", "split", "folder"], spec.stem


def test_a_file_stem_finds_its_figure_by_the_longest_prefix():
    for spec in FIGURES:
        stem = spec.file_stem("MNIST5k", "non-iid-2") if spec.per != "partition" else "partition_MNIST5k_iid"
        assert figure_spec_of(stem) is spec
        assert figure_caption(stem) == spec.caption
        assert report_subcategory(stem) == spec.category
    # "cost_curves_" is a figure although "cost_" is a table kind; "cost_" alone is the table
    assert report_subcategory("cost_curves_MNIST5k_iid") == "Communication and compute"
    assert table_kind_of("cost_MNIST5k_iid").stem == "cost" and figure_spec_of("cost_MNIST5k_iid") is None
    assert figure_caption("unknown_MNIST5k") == "figure" and report_subcategory("unknown_MNIST5k") == "unknown"


def _render(template: str, **job) -> str:
    text = (TEMPLATES / template).read_text()
    snakemake = SimpleNamespace(
        params=SimpleNamespace(captions=REPORT_CAPTIONS), wildcards=SimpleNamespace(**job)
    )  # what Snakemake hands its caption templates: the job, with its params and the item's wildcards
    return jinja2.Template(text).render(snakemake=snakemake).strip()


@pytest.mark.parametrize("spec", [s for s in FIGURES if s.per != "partition"], ids=lambda s: s.stem)
def test_the_report_caption_template_gives_each_figure_its_declared_description(spec):
    name = spec.file_stem("CIFAR10", "iid")
    assert _render("figures.rst", name=name) == spec.description.format(name=name)


def test_the_partition_and_table_templates_read_the_same_tables():
    partition = _render("partition.rst", dataset="MNIST5k", split="non-iid-2", users="100", seed="3")
    assert partition.endswith("of the partition ``MNIST5k_non-iid-2_users100_seed3``.")
    for kind in TABLE_KINDS:
        name = f"{kind.stem}_MNIST5k_iid"
        assert _render("tables.rst", name=name) == kind.description.format(name=name)
    assert _render("tables.rst", name="mystery_MNIST5k").startswith("Table ``mystery_MNIST5k``")


def test_every_table_the_committed_summary_gives_has_a_declared_kind(tmp_path):
    """A new table written without a TableKind line would land in the report under its first word, uncaptioned."""
    written = write_tables(ROOT / "results" / "committed" / "summary" / "runs.csv", tmp_path)
    stems = {p.stem for p in written if p.suffix == ".md" and p.name != "index.md"}
    assert {"combination_MNIST5k", "cost_MNIST5k_iid", "interpolation_MNIST5k_iid", "submodels_MNIST5k_iid"} <= stems
    for stem in stems:
        assert table_kind_of(stem) is not None, stem

"""What each table and figure of the report is: its subcategory and its caption paragraph, by file stem.

Figures declare theirs in :data:`heterofl.report.figures.registry.FIGURES`; tables in :data:`TABLE_KINDS` here.
The workflow reads both through :data:`REPORT_CAPTIONS` (``subcategory=`` of the report outputs, and the
``.rst`` caption templates call ``snakemake.params.captions``), so a new table or figure is described once.
"""

from __future__ import annotations

from dataclasses import dataclass

from heterofl.report.figures.registry import FIGURES, figure_spec_of


@dataclass(frozen=True)
class TableKind:
    """One kind of table: the file-stem prefix, the report's subcategory, its caption paragraph (``{name}``:
    the file stem)."""

    stem: str
    category: str
    description: str


TABLE_KINDS: tuple[TableKind, ...] = (
    TableKind(
        "combination",
        "Combinations (paper Table 1)",
        "The paper's Table 1 for one dataset (``{name}``): the global model's accuracy when clients train"
        " width-reduced submodels. Rows come in blocks per global rate (a, then its mixes such as a-e and"
        " a-b-c-d-e); Ratio is the clients' average share of the global model's parameters. Read within a block how"
        " much accuracy a mix of narrower clients costs against all clients at the global rate, and across blocks how"
        " a narrower global model compares. IID gives the global model's accuracy (perplexity for WikiText2: lower"
        " is better); under a label skew (non-IID) Local is the accuracy on each client's own labels, Global on all"
        ' labels. Where a row\'s control string is one the paper reports, "Paper" is the published value and "Δ" is'
        " ours minus the paper's; the paper's numbers are best-round test accuracy.",
    ),
    TableKind(
        "interpolation",
        "Interpolation",
        "Interpolation (``{name}``): fix-mode runs where a share of the clients (100 % .. 0 %) trains the larger"
        " rate X and the others the smaller Y, with the two single-rate endpoints. Read down each pair how the"
        " global model's accuracy falls as fewer clients hold the full width, against the parameters the clients"
        ' train. "Paper" and "Δ" (ours minus the paper\'s) appear where the paper reports that control string.',
    ),
    TableKind(
        "ablation",
        "Ablation (paper Table 2)",
        "Ablation (``{name}``, the paper's Table 2): runs that differ only in normalization (sBN ``bn``, ``in``,"
        " ``gn``, ``ln``, ``none``), the Scaler and the masked cross-entropy. Compare rows of one model to see what"
        ' each of HeteroFL\'s parts contributes to local and global accuracy; "Paper" and "Δ" give the published'
        " value where the paper reports that variant.",
    ),
    TableKind(
        "submodels",
        "Global model at every rate",
        "The final global model evaluated at every rate a..e (``{name}``), per configuration: how much a slice of"
        " the global model keeps of its accuracy, which the reference never measured. A dash marks a rate above the"
        " configuration's global rate.",
    ),
    TableKind(
        "methods",
        "Methods",
        "Methods compared (``{name}``): HeteroFL and the other width-reduction methods on the same clients and"
        " seeds, the global model evaluated at every rate, the best mean per column in bold, then each method's"
        " paired difference to HeteroFL with its 95 % t-interval over seeds. Call a method better only where the"
        " interval excludes zero.",
    ),
    TableKind(
        "clock",
        "Simulated clock",
        "Runs on the simulated clock (``{name}``): per device fleet and setup (FedAvg waiting for every client or"
        " with a deadline, the width methods with widths by capability), the simulated time to reach the target"
        " accuracy and the accuracy within the time budget, each paired by seed against HeteroFL with capability"
        " widths on the same fleet (95 % t-interval: call a setup faster only where it excludes zero), the updates"
        " lost and client compute wasted, and the share of each device class's sampled updates that reached the"
        " model.",
    ),
    TableKind(
        "cost",
        "Communication and compute",
        "Communication and client compute (``{name}``): per configuration, the megabytes moved and the client"
        " training MACs until the global model first reaches 90 % and 95 % of its final accuracy, and the run's"
        " totals. Read which configuration reaches a given accuracy with the least communication or compute.",
    ),
)


def table_kind_of(name: str) -> TableKind | None:
    """The kind of a table by its file stem (the longest matching ``{stem}_`` prefix), or ``None``."""
    matches = [kind for kind in TABLE_KINDS if name.startswith(f"{kind.stem}_")]
    return max(matches, key=lambda kind: len(kind.stem)) if matches else None


class ReportCaptions:
    """The captions and subcategories of the Snakemake report, passed to the rules as ``params.captions``.

    Its ``repr`` is constant, so that editing a caption does not make Snakemake rerun a rule (captions are read
    when the report is built, ``snakemake --report``)."""

    def table(self, name: str) -> str:
        kind = table_kind_of(name)
        return kind.description.format(name=name) if kind else f"Table ``{name}`` (listed in ``tables/index.md``)."

    def figure(self, name: str) -> str:
        spec = figure_spec_of(name)
        return spec.description.format(name=name) if spec else f"Figure ``{name}`` (listed in ``tables/index.md``)."

    def partition(self, name: str) -> str:
        """A partition heatmap's caption; its file stem (``{D}_{S}_users{N}_seed{K}``) has no figure prefix."""
        return self.figure(f"partition_{name}").replace("partition_", "", 1)

    def __repr__(self) -> str:
        return "ReportCaptions()"


REPORT_CAPTIONS = ReportCaptions()


def report_subcategory(name: str) -> str:
    """The report's subcategory of a table or figure file stem; its first word when no kind declares it."""
    spec = figure_spec_of(name)
    kind = table_kind_of(name)
    if spec is not None and (kind is None or len(spec.stem) >= len(kind.stem)):
        return spec.category
    return kind.category if kind is not None else name.split("_")[0]


__all__ = ["FIGURES", "REPORT_CAPTIONS", "TABLE_KINDS", "ReportCaptions", "TableKind", "report_subcategory"]

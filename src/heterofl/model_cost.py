"""Params, FLOPs and Space of every registered model and rate, read from a table shipped with the package.

The tables and figures quote each configuration's cost (HeteroFL, Diao, Ding, Tarokh, ICLR 2021,
https://arxiv.org/abs/2010.01264, Table 1). Counting it builds the models, which needs PyTorch; the report
path must not (a figures-only install has no PyTorch), so the counts of the registry's models at their counting
sizes are kept in ``model_cost.csv`` beside this file. ``tests/test_model_cost.py`` recounts every row, so the
file cannot drift from the models; after changing a model, rewrite it with ``python -m heterofl.model_cost``.
A model or ResNet depth the file lacks is counted on demand (with PyTorch).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from heterofl.data.registry import DATASETS
from heterofl.errors import HeteroFLError
from heterofl.models.registry import MODELS, declared_spec
from heterofl.rates import ModelMode

COST_FILE = Path(__file__).with_name("model_cost.csv")
RESNET_DEPTHS = ("1-1-1-2", "2-2-2-2")
"""The ResNet18 block counts the file holds: the paper's (1-1-1-2) and the standard ResNet18's."""


def cost_keys() -> list[tuple[str, str, int]]:
    """(model, resnet_blocks, num_classes) of every row group the file holds: each ResNet depth of
    :data:`RESNET_DEPTHS` ("" for other models) and each label count of a dataset of the model's kind (CIFAR100's
    100-way head as well as the 10-way one)."""
    keys = []
    for name, spec in MODELS.items():
        counted = spec.counting_kwargs().get("num_classes")
        kinds = {d.num_classes for d in DATASETS.values() if d.kind == spec.kind} if counted else set()
        for depth in RESNET_DEPTHS if "resnet_blocks" in spec.kwargs else ("",):
            keys += [(name, depth, classes) for classes in sorted({spec.num_classes, *kinds})]
    return keys


def count_cost(model: str, resnet_blocks: str, num_classes: int | None = None) -> pd.DataFrame:
    """Count one model's table by building it (imports PyTorch)."""
    spec = declared_spec(model)
    classes = spec.num_classes if num_classes is None else int(num_classes)
    try:
        from heterofl.complexity import complexity_table
    except ImportError:
        where = f"{model!r} (resnet_blocks {resnet_blocks!r}, {classes} classes)"
        problem = f"{where} is not in {COST_FILE.name}; counting it needs PyTorch"
        raise HeteroFLError("model", problem, "a model of that file, or pip install '.[train]'") from None
    kwargs = spec.counting_kwargs()
    if "num_classes" in kwargs:
        kwargs["num_classes"] = classes
    if "resnet_blocks" in spec.kwargs:
        kwargs["resnet_blocks"] = tuple(int(b) for b in resnet_blocks.split("-"))
    return complexity_table(model, **kwargs).assign(resnet_blocks=resnet_blocks, num_classes=classes)


@cache
def _shipped() -> pd.DataFrame:
    return pd.read_csv(COST_FILE, dtype={"resnet_blocks": str}, keep_default_na=False)


@cache
def cost_table(model: str, resnet_blocks: str = "", num_classes: int | None = None) -> pd.DataFrame:
    """Per-letter params, FLOPs (summary.py's convention), true MACs and Space of ``model`` at its counting sizes;
    ``resnet_blocks`` ("1-1-1-2") only for a model that takes it, ``num_classes`` to count another head."""
    spec = declared_spec(model)
    depth = str(resnet_blocks) if "resnet_blocks" in spec.kwargs else ""
    classes = spec.num_classes if num_classes is None else int(num_classes)
    shipped = _shipped()
    rows = shipped[
        (shipped["model"] == model) & (shipped["resnet_blocks"] == depth) & (shipped["num_classes"] == classes)
    ]
    table = rows if not rows.empty else count_cost(model, depth, classes)
    return table.drop(columns=["resnet_blocks", "num_classes"]).reset_index(drop=True)


def combination_row(table: pd.DataFrame, model_mode: str) -> dict:
    """The paper's combination row (process.make_stats): proportion-weighted means and the param Ratio.

    Ratio = sum p_i * params_i / (sum p_i * params(first letter)), the average client's share of the
    global model. ``table`` must hold one model and every letter the mode names.
    """
    if table["model"].nunique() != 1:
        raise HeteroFLError("table", "holds several models", "a complexity_table of one model")
    mode = ModelMode.parse(model_mode)
    by_letter = table.set_index("letter")
    missing = [x for x in mode.letters if x not in by_letter.index]
    if missing:
        raise HeteroFLError("model_mode", f"letters {missing} are not in the table", ", ".join(by_letter.index))
    row: dict = {"model": table["model"].iloc[0], "model_mode": model_mode}
    for column in ("params", "flops_reference", "macs_true", "space_mb"):
        row[column] = mode.mean_ratio(by_letter[column].to_dict())
    row["ratio"] = row["params"] / float(by_letter.loc[mode.letters[0], "params"])
    return row


def _human(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"model": df["model"], "letter": df["letter"], "rate": df["rate"].map(lambda r: f"{r:g}")})
    out["params"] = df["params"].map(lambda v: f"{int(v):,}")
    out["FLOPs (summary.py)"] = df["flops_reference"].map(lambda v: f"{v / 1e6:.2f}M")
    out["true MACs"] = df["macs_true"].map(lambda v: f"{v / 1e6:.2f}M")
    out["space (MB)"] = df["space_mb"].map(lambda v: f"{v:.2f}")
    return out


def format_table(df: pd.DataFrame) -> str:
    """A Markdown table in human units: params with thousands separators, FLOPs/MACs in M, MB to 2 dp."""
    human = _human(df)
    header = "| " + " | ".join(human.columns) + " |"
    align = "|" + "|".join("---" if c in ("model", "letter") else "---:" for c in human.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in human.itertuples(index=False)]
    return "\n".join([header, align, *body])


def write_cost_file(path: Path = COST_FILE) -> None:
    """Count every model of the registry and write the shipped table (maintainers, after changing a model)."""
    from heterofl.io import write_csv

    write_csv(path, pd.concat([count_cost(*key) for key in cost_keys()], ignore_index=True))


if __name__ == "__main__":
    write_cost_file()
    print(f"{COST_FILE} written")

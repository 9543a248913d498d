"""Accuracy cost of a non-default ``precision``: each run of one results root beside its fp32 twin in another.

A run named ``CONTROL+bf16`` (or ``+tf32``) is matched with the run named ``CONTROL`` (same dataset, model
and seed) in the fp32 root; both roots' ``summary/runs.csv`` give the global model's accuracy at its own
rate. Prints a Markdown table (Global accuracy, and Local for non-IID splits; final and mean of the last
k evaluations) with the difference, and the largest absolute difference.

``--summary-csv`` also writes the pair count, the mean differences and the largest one (one row);
``--from-csv`` reads a table this script wrote instead of the two roots.

Usage: ``python benchmarks/precision_accuracy.py results/precision results/committed [--csv out.csv]
[--summary-csv summary.csv]``, or ``python benchmarks/precision_accuracy.py --from-csv
benchmarks/precision_accuracy.csv --summary-csv benchmarks/precision_accuracy_summary.csv``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

KEYS = ["dataset", "model", "control", "seed", "metric"]


def headline(root: str) -> pd.DataFrame:
    """Accuracy rows of the global model at its own rate, one per run and metric."""
    runs = pd.read_csv(Path(root) / "summary" / "runs.csv")
    runs = runs[(runs["letter"] == runs["global_letter"]) & runs["metric"].str.endswith("Accuracy")]
    runs = runs.assign(precision=runs["run"].str.extract(r"\+(fp32|tf32|bf16)(?:\+|$)")[0].fillna("fp32"))
    return runs[[*KEYS, "data_split_mode", "model_split_mode", "model_mode", "precision", "final", "mean_last_k"]]


def compare(low: pd.DataFrame, fp32: pd.DataFrame) -> pd.DataFrame:
    low = low[low["precision"] != "fp32"]
    fp32 = fp32[fp32["precision"] == "fp32"]
    both = low.merge(fp32[[*KEYS, "final", "mean_last_k"]], on=KEYS, suffixes=("", "_fp32"))
    both = both[(both["data_split_mode"] != "iid") | (both["metric"] == "Global-Accuracy")]
    for column in ("final", "mean_last_k"):
        both[f"{column}_diff"] = both[column] - both[f"{column}_fp32"]
    return both.sort_values(["data_split_mode", "metric", "model_split_mode", "model_mode"]).reset_index(drop=True)


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Pairs, mean difference (final, mean of the last k) and the largest absolute difference, in points."""
    diffs = table[["final_diff", "mean_last_k_diff"]]
    return {
        "pairs": len(table),
        "mean_final_diff": diffs["final_diff"].mean(),
        "mean_last_k_diff": diffs["mean_last_k_diff"].mean(),
        "max_abs_diff": diffs.abs().max().max(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("low", nargs="?", help="results root with the non-fp32 runs")
    parser.add_argument("fp32", nargs="?", help="results root with their fp32 twins")
    parser.add_argument("--csv", help="also write the table here")
    parser.add_argument("--summary-csv", help="also write the pairs, mean differences and largest difference here")
    parser.add_argument("--from-csv", help="a table this script wrote, instead of the two results roots")
    args = parser.parse_args()
    if args.from_csv:
        table = pd.read_csv(args.from_csv)
    elif args.low and args.fp32:
        table = compare(headline(args.low), headline(args.fp32))
    else:
        parser.error("give the two results roots, or --from-csv")
    if table.empty:
        raise SystemExit(f"no run of {args.low} has an fp32 twin in {args.fp32}")
    print("| split | metric | mode | precision | final | fp32 | diff | mean last k | fp32 | diff |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for row in table.itertuples():
        print(
            f"| {row.data_split_mode} | {row.metric} | {row.model_split_mode} {row.model_mode} | {row.precision} "
            f"| {row.final:.2f} | {row.final_fp32:.2f} | {row.final_diff:+.2f} "
            f"| {row.mean_last_k:.2f} | {row.mean_last_k_fp32:.2f} | {row.mean_last_k_diff:+.2f} |"
        )
    totals = summary(table)
    print(
        f"\n{totals['pairs']} pairs; mean difference final {totals['mean_final_diff']:+.2f}, mean last k "
        f"{totals['mean_last_k_diff']:+.2f}; largest |difference| {totals['max_abs_diff']:.2f} points"
    )
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.summary_csv:
        pd.DataFrame([totals]).to_csv(args.summary_csv, index=False)


if __name__ == "__main__":
    main()

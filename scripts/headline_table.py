"""The headline table of docs/benchmarks.md from a results folder (mean ± std over seeds).

One row per model and protocol at the default size: parameters, epochs trained (early stopping or
the model's own schedule, min–max over seeds), and the headline metrics.

Usage::

    .venv/bin/python scripts/headline_table.py results/reapseq
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scmodtt.benchmark import MODELS
from scmodtt.benchmark._summary import summarize

COLUMNS = {
    "cond_r": ("cond_r ↑", 3),
    "interact_r": ("interact_r ↑", 2),
    "tstr_f1": ("TSTR F1 ↑", 3),
    "c2st_auc": ("C2ST AUC (→ 0.5)", 2),
    "mmd2_rbf": ("MMD² ↓", 3),
    "knn_precision": ("kNN precision ↑", 2),
    "knn_recall": ("kNN recall ↑", 2),
}


def _params(n: float) -> str:
    if n == 0:
        return "0"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def headline(results: pd.DataFrame) -> str:
    results = results[results["budget"].astype(str) == "default"]
    summary = summarize(results, metrics=[*COLUMNS, "epochs"]).set_index(
        ["model", "protocol", "metric"]
    )
    epochs = results[results["metric"] == "epochs"].groupby("model")["value"].agg(["min", "max"])
    header = "| model | protocol | params | epochs | " + " | ".join(c[0] for c in COLUMNS.values())
    lines = [header + " |", "|" + "---|" * (4 + len(COLUMNS))]
    present = set(summary.reset_index()[["model", "protocol"]].itertuples(index=False))
    runs = [(m, p) for m, spec in MODELS.items() for p in spec.protocols if (m, p) in present]
    for model, protocol in runs:
        cells = []
        for metric, (_, decimals) in COLUMNS.items():
            row = summary.loc[(model, protocol, metric)]
            spread = "" if pd.isna(row["std"]) else f" ± {row['std']:.{decimals}f}"
            cells.append(f"{row['mean']:.{decimals}f}{spread}")
        n_params = summary.loc[(model, protocol, "cond_r"), "n_params"]
        if model in epochs.index:
            low, high = (int(v) for v in epochs.loc[model])
            trained = f"{low}–{high}" if low != high else str(low)
        else:
            trained = "—"
        lines.append(
            f"| {model} | {protocol} | {_params(n_params)} | {trained} | "
            + " | ".join(cells)
            + " |"
        )
    seeds = sorted(int(s) for s in results["seed"].unique())
    return "\n".join(lines) + f"\n\nSeeds: {', '.join(map(str, seeds))} ({len(seeds)}).\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="benchmark output folder (results.csv)")
    args = parser.parse_args()
    print(headline(pd.read_csv(args.out / "results.csv", dtype={"budget": str})))


if __name__ == "__main__":
    main()

"""The headline table of docs/benchmarks.md from a results folder (mean ± std over seeds).

One row per model and protocol at the default size: parameters, epochs trained (early stopping or
the model's own schedule, min–max over seeds), and the headline metrics. ``--budgets`` gives the
parameter-budget table instead: one row per budget and model (one protocol), with its seed count.

Usage::

    .venv/bin/python scripts/headline_table.py results/reapseq
    .venv/bin/python scripts/headline_table.py results/reapseq_budgets --budgets
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scmodtt.benchmark import MODELS
from scmodtt.benchmark._budget import parse_budget
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


def _metric_cells(summary: pd.DataFrame, key: tuple) -> list[str]:
    cells = []
    for metric, (_, decimals) in COLUMNS.items():
        row = summary.loc[(*key, metric)]
        spread = "" if pd.isna(row["std"]) else f" ± {row['std']:.{decimals}f}"
        cells.append(f"{row['mean']:.{decimals}f}{spread}")
    return cells


def _epoch_range(results: pd.DataFrame, keys: list[str]) -> dict:
    epochs = results[results["metric"] == "epochs"].groupby(keys)["value"].agg(["min", "max"])
    return {
        key: f"{int(low)}–{int(high)}" if low != high else str(int(low))
        for key, (low, high) in epochs.iterrows()
    }


def headline(results: pd.DataFrame) -> str:
    results = results[results["budget"].astype(str) == "default"]
    summary = summarize(results, metrics=[*COLUMNS, "epochs"]).set_index(
        ["model", "protocol", "metric"]
    )
    epochs = _epoch_range(results, ["model"])
    header = "| model | protocol | params | epochs | " + " | ".join(c[0] for c in COLUMNS.values())
    lines = [header + " |", "|" + "---|" * (4 + len(COLUMNS))]
    present = set(summary.reset_index()[["model", "protocol"]].itertuples(index=False))
    runs = [(m, p) for m, spec in MODELS.items() for p in spec.protocols if (m, p) in present]
    for model, protocol in runs:
        n_params = summary.loc[(model, protocol, "cond_r"), "n_params"]
        lines.append(
            f"| {model} | {protocol} | {_params(n_params)} | {epochs.get(model, '—')} | "
            + " | ".join(_metric_cells(summary, (model, protocol)))
            + " |"
        )
    seeds = sorted(int(s) for s in results["seed"].unique())
    return "\n".join(lines) + f"\n\nSeeds: {', '.join(map(str, seeds))} ({len(seeds)}).\n"


def budget_table(results: pd.DataFrame, protocol: str = "native") -> str:
    results = results[
        (results["budget"].astype(str) != "default") & (results["protocol"] == protocol)
    ]
    summary = summarize(results, metrics=[*COLUMNS, "epochs"])
    summary = summary.set_index(["budget", "model", "metric"])
    epochs = _epoch_range(results, ["budget", "model"])
    seeds = results.groupby(["budget", "model"])["seed"].nunique()
    header = "| budget | model | params | seeds | epochs | " + " | ".join(
        c[0] for c in COLUMNS.values()
    )
    lines = [header + " |", "|" + "---|" * (5 + len(COLUMNS))]
    order = sorted(seeds.index, key=lambda key: (parse_budget(key[0]), list(MODELS).index(key[1])))
    for budget, model in order:
        n_params = summary.loc[(budget, model, "cond_r"), "n_params"]
        lines.append(
            f"| {budget} | {model} | {_params(n_params)} | {seeds[(budget, model)]} | "
            f"{epochs.get((budget, model), '—')} | "
            + " | ".join(_metric_cells(summary, (budget, model)))
            + " |"
        )
    return "\n".join(lines) + f"\n\nProtocol: {protocol}.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="benchmark output folder (results.csv)")
    parser.add_argument(
        "--budgets", action="store_true", help="the parameter-budget table (native protocol)"
    )
    args = parser.parse_args()
    results = pd.read_csv(args.out / "results.csv", dtype={"budget": str})
    print(budget_table(results) if args.budgets else headline(results))


if __name__ == "__main__":
    main()

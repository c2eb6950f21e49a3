"""Paired per-seed differences between two benchmark folders run on the same data and seeds.

The benchmark pairs models inside one ``results.csv``; settings that change every model (e.g.
``--gene-likelihood normal``) go to their own folder. This pairs each (model, protocol, budget)
of FOLDER_A with the same run of FOLDER_B over their shared seeds (A − B, 95% t-interval).

Usage (the likelihood table of docs/benchmarks.md)::

    .venv/bin/python scripts/compare_runs.py results/reapseq_gaussian results/reapseq
"""

from __future__ import annotations

import argparse

import pandas as pd

from scmodtt.benchmark._stats import t_interval

METRICS = ("tstr_f1", "interact_r", "cond_r", "mmd2_rbf")
KEYS = ["model", "protocol", "budget", "metric"]


def compare(folder_a: str, folder_b: str, metrics=METRICS) -> pd.DataFrame:
    runs = [
        pd.read_csv(f"{folder}/results.csv", dtype={"budget": str})
        for folder in (folder_a, folder_b)
    ]
    runs = [frame[frame["metric"].isin(metrics)] for frame in runs]
    paired = runs[0].merge(runs[1], on=[*KEYS, "seed"], suffixes=("_a", "_b"))
    paired["difference"] = paired["value_a"] - paired["value_b"]
    table = paired.groupby(KEYS, sort=False)["difference"].agg(["mean", "std", "count"])
    table["ci_low"], table["ci_high"] = t_interval(table["mean"], table["std"], table["count"])
    return table.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder_a")
    parser.add_argument("folder_b")
    args = parser.parse_args()
    table = compare(args.folder_a, args.folder_b)
    cells = table.assign(
        cell=[
            f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}] (n={n})"
            for m, lo, hi, n in table[["mean", "ci_low", "ci_high", "count"]].itertuples(
                index=False
            )
        ]
    )
    wide = cells.pivot(index=["model", "protocol", "budget"], columns="metric", values="cell")
    print(wide[list(METRICS)].to_markdown())


if __name__ == "__main__":
    main()

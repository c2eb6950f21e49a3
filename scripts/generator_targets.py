"""The generator issue's targets on benchmark results: paired per-seed differences, t-intervals.

MODTT-tt's ``sample()`` (protocol ``native``) against each baseline at its best protocol on the
mean of each metric (scVI and totalVI: ``latent_flow`` or ``latent_gaussian``), and against the
oracle (real training cells). A target is met when its whole interval is on the right side,
missed when it is on the wrong side, and not resolved otherwise.

Usage::

    .venv/bin/python scripts/generator_targets.py results/reapseq [--markdown]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scmodtt.benchmark._stats import t_interval

MODEL, PROTOCOL = "modtt-tt", "native"
BASELINES = ("totalvi", "scvi")


def _per_seed(results: pd.DataFrame, model: str, protocol: str, metric: str) -> pd.Series:
    rows = results[
        (results["model"] == model)
        & (results["protocol"] == protocol)
        & (results["metric"] == metric)
        & (results["budget"].astype(str) == "default")
    ]
    return rows.groupby("seed")["value"].mean()


def _best_protocol(results: pd.DataFrame, model: str, metric: str) -> str | None:
    """The model's protocol with the highest mean of ``metric`` (higher is better here)."""
    rows = results[(results["model"] == model) & (results["metric"] == metric)]
    means = rows.groupby("protocol")["value"].mean()
    return None if means.empty else str(means.idxmax())


def _row(target: str, difference: pd.Series, threshold: float = 0.0, higher: bool = True) -> dict:
    """``difference`` per seed must be above ``threshold`` (or below it, ``higher=False``)."""
    n = int(difference.notna().sum())
    mean, std = float(difference.mean()), float(difference.std(ddof=1))
    low, high = (float(v) for v in t_interval(mean, std, n))
    met = low > threshold if higher else high < threshold
    missed = high < threshold if higher else low > threshold
    return {
        "target": target,
        "n_seeds": n,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "verdict": "met" if met else "missed" if missed else "not resolved (interval spans it)",
    }


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """One row per target: paired mean, 95% interval and whether it holds."""
    rows = []

    def own(metric):
        return _per_seed(results, MODEL, PROTOCOL, metric)

    for metric, label in (
        ("tstr_f1", "TSTR F1"),
        ("interact_r", "interact_r"),
        ("cond_r", "cond_r"),
    ):
        for baseline in BASELINES:
            protocol = _best_protocol(results, baseline, metric)
            if protocol is None:
                continue  # not in these results
            theirs = _per_seed(results, baseline, protocol, metric)
            margin = 0.10 if metric == "cond_r" else 0.0
            text = f"{label} − {baseline} ({protocol})" + (" ≥ +0.10" if margin else " ≥ 0")
            rows.append(_row(text, own(metric) - theirs, margin))
    oracle_tstr = _per_seed(results, "oracle", "oracle", "tstr_f1")
    rows.append(_row("TSTR F1 − (oracle − 0.03) ≥ 0", own("tstr_f1") - (oracle_tstr - 0.03)))
    oracle_cond = _per_seed(results, "oracle", "oracle", "cond_r")
    rows.append(_row("cond_r − 0.6 × oracle ≥ 0", own("cond_r") - 0.6 * oracle_cond))
    rows.append(_row("C2ST AUC − 0.60 ≤ 0", own("c2st_auc") - 0.60, higher=False))
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    lines = [
        "| target (MODTT-tt native, paired per seed) | seeds | mean | 95% interval | verdict |",
        "|---|---|---|---|---|",
    ]
    for _, row in frame.iterrows():
        lines.append(
            f"| {row['target']} | {row['n_seeds']} | {row['mean']:+.3f} "
            f"| [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] | {row['verdict']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="benchmark output folder (results.csv)")
    args = parser.parse_args()
    results = pd.read_csv(args.out / "results.csv", dtype={"budget": str})
    frame = targets(results)
    print(markdown(frame))


if __name__ == "__main__":
    main()

"""How many ODE steps the flow prior needs: solve accuracy and benchmark metrics per step count.

For each seed, MODTT is trained at its defaults on the benchmark's REAP-seq split (2,000 HVGs +
48 ADTs, Ward modules, as ``scmodtt-benchmark``), then

1. **solve accuracy**: the same noise is integrated with ``n_steps`` midpoint steps and with
   :data:`REFERENCE_STEPS`; the root-mean-square difference of the endpoints is reported in the
   flow's standardized units (each modelled dimension has unit variance over the training cells,
   so 0.05 is 5% of a dimension's spread);
2. **metrics**: ``sample()`` at each step count, :data:`DRAWS` draws each (cond_r alone varies by
   about ±0.07 from draw to draw), scored against the test cells as the benchmark does.

Usage (one thread; about 8 minutes per seed)::

    .venv/bin/python scripts/ode_steps.py --seeds 0 1 2 --out results/ode_steps
    .venv/bin/python scripts/ode_steps.py --summarize results/ode_steps

``--summarize`` prints the mean solve error per step count and the paired per-seed difference of
each metric against 20 steps (the mean over draws, 95% t-interval over seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import scvi
import torch

from scmodtt.benchmark import _run, _seed
from scmodtt.benchmark._stats import t_interval
from scmodtt.benchmark._timing import EpochTimer
from scmodtt.benchmark._zoo import build_model

STEP_COUNTS = (2, 4, 5, 8, 10, 20)
METRIC_STEPS = (5, 8, 10, 20)
REFERENCE_STEPS = 200
DRAWS = 3
N_SOLVE_CELLS = 4000
METRICS = ("cond_r", "interact_r", "tstr_f1", "c2st_auc", "mmd2_rbf", "knn_precision", "knn_recall")


def run_seed(seed: int, out: Path) -> None:
    context = _seed.reapseq_context(seed)
    scvi.settings.seed = seed
    fit = context.fit.copy()
    _seed.use_modules(fit, "ward")
    model = build_model("modtt-tt", fit, labels_key="cell_type")
    _run._train(model, _run.BenchmarkModel.parse("modtt-tt"), context, None, EpochTimer())

    flow = model.module.flow_prior
    fitted = torch.nonzero(flow.fitted_labels).reshape(-1)
    labels = fitted[torch.arange(N_SOLVE_CELLS) % len(fitted)]
    batches = torch.zeros_like(labels)

    def endpoints(n_steps: int) -> torch.Tensor:
        torch.manual_seed(seed)  # the same noise for every step count
        return (flow.sample(labels, batches, n_steps) - flow.centre) / flow.spread

    reference = endpoints(REFERENCE_STEPS)
    rows = [
        {
            "seed": seed,
            "n_steps": n_steps,
            "draw": -1,
            "metric": "solve_rmse",
            "value": float((endpoints(n_steps) - reference).pow(2).mean().sqrt()),
        }
        for n_steps in STEP_COUNTS
    ]
    for n_steps in METRIC_STEPS:
        for draw in range(DRAWS):
            synthetic = model.sample(
                labels=context.label_counts.to_dict(), seed=1000 * seed + draw, n_steps=n_steps
            )
            synthetic.obs["cell_type"] = synthetic.obs["cell_type"].astype(str).astype("category")
            scores = context.score(synthetic)
            scores = scores[scores["metric"].isin(METRICS)]
            rows += [
                {"seed": seed, "n_steps": n_steps, "draw": draw, "metric": m, "value": v}
                for m, v in zip(scores["metric"], scores["value"], strict=True)
            ]
        print(f"seed {seed}, {n_steps} steps scored", flush=True)
    table = pd.DataFrame(rows)
    path = out / "ode_steps.csv"
    table.to_csv(path, mode="a", header=not path.exists(), index=False)


def summarize(out: Path) -> None:
    table = pd.read_csv(out / "ode_steps.csv")
    solve = table[table["metric"] == "solve_rmse"]
    print("Endpoint RMS difference from a 200-step solve (standardized units, mean ± std):")
    print(solve.groupby("n_steps")["value"].agg(["mean", "std", "count"]).round(4).to_string())
    scored = table[table["metric"] != "solve_rmse"]
    per_seed = scored.groupby(["metric", "n_steps", "seed"])["value"].mean().unstack("n_steps")
    print(f"\nPaired per-seed difference against 20 steps (mean of {DRAWS} draws, 95% t):")
    for n_steps in [n for n in METRIC_STEPS if n != 20]:
        difference = (per_seed[n_steps] - per_seed[20]).groupby("metric")
        stats = difference.agg(["mean", "std", "count"])
        low, high = (
            pd.Series(bound, index=stats.index)
            for bound in t_interval(stats["mean"], stats["std"], stats["count"])
        )
        for metric, row in stats.iterrows():
            print(
                f"{n_steps:>3} steps  {metric:<14} {per_seed[n_steps].loc[metric].mean():.3f} vs "
                f"{per_seed[20].loc[metric].mean():.3f}  {row['mean']:+.3f} "
                f"[{low[metric]:+.3f}, {high[metric]:+.3f}]  ({int(row['count'])} seeds)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("results/ode_steps"))
    parser.add_argument("--summarize", type=Path, default=None, metavar="FOLDER")
    args = parser.parse_args()
    if args.summarize is not None:
        summarize(args.summarize)
        return
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        run_seed(seed, args.out)


if __name__ == "__main__":
    main()

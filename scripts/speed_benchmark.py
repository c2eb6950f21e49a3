"""Training speed of MODTT (TT and dense) against totalVI on REAP-seq, 2,000 HVGs + all ADTs.

Each run trains in a fresh process; medians over repeats. Usage:

    .venv/bin/python scripts/speed_benchmark.py --repeats 3 --epochs 8 --out results/speed
"""

import argparse
import tempfile
from pathlib import Path

import mudata

import scmodtt
from scmodtt.benchmark import measure_training_speed


def prepare(n_top_genes: int, path: Path) -> None:
    mudata.set_options(pull_on_update=False)
    mdata = scmodtt.datasets.reapseq_pbmc()
    hvg = scmodtt.pp.highly_variable_genes(mdata, n_top_genes=n_top_genes, subset=True)
    scmodtt.pp.find_modules(hvg, n_modules={"rna": 50, "prot": 20}, method="ward")
    hvg.write(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs per run")
    parser.add_argument("--n-top-genes", type=int, default=2000)
    parser.add_argument("--models", default="modtt-tt,modtt-dense,totalvi")
    parser.add_argument("--out", type=Path, default=Path("results/speed"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reapseq_hvg.h5mu"
        prepare(args.n_top_genes, path)
        runs, summary = measure_training_speed(
            path,
            models=args.models.split(","),
            n_epochs=args.epochs,
            n_warmup_epochs=args.warmup,
            repeats=args.repeats,
            labels_key="cell_type",
        )
    runs.to_csv(args.out / "speed_runs.csv", index=False)
    summary.to_csv(args.out / "speed_summary.csv")
    print(summary.round(3).to_markdown())


if __name__ == "__main__":
    main()

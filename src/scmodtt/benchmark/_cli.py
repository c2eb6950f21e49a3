"""``scmodtt-benchmark``: the benchmark from the command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._run import DEFAULT_MODELS
from ._zoo import models_help, module_method_models, sized_models

#: Named settings; ``quick`` is the README's main job (about 6 minutes on 2 idle cores): MODTT-tt
#: at its defaults (early stopping converges within ~50 epochs on REAP-seq) beside scVI and totalVI
#: capped at the same 50 epochs, which is short for their 400-epoch KL warm-up (the published
#: benchmark trains every model on its own schedule).
PRESETS = {
    "quick": {
        "data": "reapseq_pbmc",
        "models": "modtt-tt,scvi,totalvi,linear,oracle",
        "seeds": 1,
        "max_epochs": 50,
        "min_cells_per_label": 40,
        "exclude_labels": "doublet-like,low_quality",
    },
}


def _n_modules(text: str) -> dict[str, int]:
    """``"rna=300,prot=20"`` → ``{"rna": 300, "prot": 20}``."""
    sizes = {}
    for item in text.split(","):
        modality, _, count = item.partition("=")
        modality = modality.strip()
        if not count.strip().isdigit() or not modality or int(count) < 1:
            raise argparse.ArgumentTypeError(
                f"Cannot read {item!r} in --n-modules {text!r}; write e.g. rna=300,prot=20 "
                "(a positive count per modality)."
            )
        if modality in sizes:
            raise argparse.ArgumentTypeError(f"--n-modules names {modality!r} twice: {text!r}.")
        sizes[modality] = int(count)
    return sizes


def _seeds(text: str) -> int | list[int]:
    """``"5"`` → 5 (seeds 0 … 4), ``"3,4"`` → [3, 4], ``"2-4"`` → [2, 3, 4]."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise argparse.ArgumentTypeError("--seeds needs at least one seed, e.g. --seeds 5.")
        return int(text)
    seeds = []
    for item in text.split(","):
        first, dash, last = item.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise argparse.ArgumentTypeError(
                f"Cannot read {item!r} in --seeds {text!r}; write a count (5), a list (3,4) "
                "or a range (2-4) of non-negative integers."
            )
        stop = int(last) if dash else int(first)
        if stop < int(first):
            raise argparse.ArgumentTypeError(f"--seeds range {item!r} runs backwards.")
        seeds.extend(range(int(first), stop + 1))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds {text!r} names a seed twice.")
    return seeds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scmodtt-benchmark",
        description="Benchmark MODTT against flat, scVI, totalVI, linear and oracle generators of "
        "CITE-seq cells (tidy results.csv, report.md, figures and metadata in --out).",
        epilog=f"Models: {models_help()}.",
    )
    parser.add_argument(
        "--task",
        choices=("generation", "speed", "transfer"),
        default="generation",
        help="generation: the quality benchmark (default); speed: seconds per epoch, memory and "
        "sample speed of every model in fresh processes (--models, --budgets, --repeats, "
        "--timed-epochs, --threads, --feature-sets, --out); transfer: query mapping, label "
        "transfer and protein imputation of a held-out batch (--data, --batch-key, "
        "--query-batch, --reference-batches, --seeds, --models, --exclude-labels, "
        "--max-epochs, --out)",
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), help="named settings; other flags override them"
    )
    parser.add_argument(
        "--data", help="bundled dataset name (reapseq_pbmc, bmmc_cite, …) or path to an .h5mu"
    )
    parser.add_argument(
        "--models",
        help=f"comma-separated, default {','.join(DEFAULT_MODELS)} "
        f"({'/'.join(module_method_models())} may end in :random or :hallmark)",
    )
    parser.add_argument(
        "--seeds",
        type=_seeds,
        help="a count n (seeds 0 … n-1), a list (3,4) or a range (2-4); two processes with "
        "different seeds and --out folders can share the work",
    )
    parser.add_argument(
        "--budgets",
        help=f"comma-separated parameter budgets for {', '.join(sized_models())}, e.g. 60k,200k,1m",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results"), help="output folder (resumable)"
    )
    parser.add_argument("--labels-key", default="cell_type")
    parser.add_argument("--batch-key", default=None)
    parser.add_argument("--max-epochs", type=int, help="training cap for every model")
    parser.add_argument(
        "--flow-max-epochs",
        type=int,
        help="epochs of every conditional flow prior (MODTT's own and the latent_flow "
        "protocol's); default MODTT's schedule of about 4,000 steps",
    )
    parser.add_argument(
        "--n-top-genes", type=int, default=2000, help="HVGs kept; 0 for the whole transcriptome"
    )
    parser.add_argument(
        "--n-modules",
        type=_n_modules,
        help="modules per modality for Ward/random modules, e.g. rna=300,prot=20 "
        "(default rna=50,prot=20)",
    )
    parser.add_argument(
        "--min-cells-per-label", type=int, help="drop (and report) labels with fewer cells"
    )
    parser.add_argument(
        "--exclude-labels",
        help="comma-separated labels whose cells are left out, e.g. doublet-like",
    )
    parser.add_argument(
        "--metric-min-cells",
        type=int,
        default=20,
        help="fewest cells of a type for per-type metrics",
    )
    parser.add_argument("--gene-likelihood", default="nb")
    parser.add_argument("--protein-likelihood", default="nb")
    parser.add_argument("--no-report", action="store_true", help="skip report.md and figures")
    speed = parser.add_argument_group("speed task")
    speed.add_argument("--repeats", type=int, default=3, help="fresh-process runs per model")
    speed.add_argument("--timed-epochs", type=int, default=6, help="after 2 warm-up epochs")
    speed.add_argument("--threads", type=int, help="torch threads per run")
    speed.add_argument(
        "--feature-sets", default="hvg2000,whole", help="hvg2000 and/or whole (transcriptome)"
    )
    transfer = parser.add_argument_group("transfer task")
    transfer.add_argument("--query-batch", help="the held-out batch (default: the last one)")
    transfer.add_argument(
        "--reference-batches",
        help="comma-separated batches the reference trains on (default: every batch but the "
        "query), e.g. reapseq with --data pbmc_panel --batch-key dataset --query-batch eccite",
    )
    transfer.add_argument("--query-epochs", type=int, default=200, help="query mapping epochs")
    transfer.add_argument(
        "--protein-dropout",
        type=float,
        default=0.5,
        help="modality dropout of the MODTT models, so that their encoder places RNA-only cells",
    )
    transfer.add_argument(
        "--adapter-rank", type=int, default=4, help="rank of modtt_query_adapter's token adapter"
    )
    return parser


def _transfer_main(args) -> None:
    from . import TRANSFER_METHODS, transfer

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("scmodtt.benchmark._transfer").setLevel(logging.INFO)
    transfer(
        data=args.data or "reapseq_pbmc",
        labels_key=args.labels_key,
        batch_key=args.batch_key or "sample",
        query_batch=args.query_batch,
        reference_batches=[b.strip() for b in args.reference_batches.split(",") if b.strip()]
        if args.reference_batches
        else None,
        seeds=args.seeds if args.seeds is not None else 3,
        methods=args.models.split(",") if args.models else TRANSFER_METHODS,
        exclude_labels=[x for x in (args.exclude_labels or "").split(",") if x],
        max_epochs=args.max_epochs,
        query_epochs=args.query_epochs,
        protein_dropout=args.protein_dropout,
        adapter_rank=args.adapter_rank,
        flow_max_epochs=args.flow_max_epochs,
        out=args.out,
    )
    print((args.out / "transfer.md").read_text())


def _speed_main(args) -> None:
    from . import SPEED_MODELS, speed

    speed(
        data=args.data or "reapseq_pbmc",
        out=args.out,
        models=args.models.split(",") if args.models else SPEED_MODELS,
        feature_sets=[f.strip() for f in args.feature_sets.split(",") if f.strip()],
        budgets=args.budgets.split(",") if args.budgets else ("200k", "1m"),
        repeats=args.repeats,
        n_epochs=args.timed_epochs,
        labels_key=args.labels_key,
        threads=args.threads,
    )
    print((args.out / "speed.md").read_text())


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its report."""
    args = _parser().parse_args(argv)
    if args.task == "speed":
        _speed_main(args)
        return
    if args.task == "transfer":
        _transfer_main(args)
        return
    settings = dict(PRESETS.get(args.preset, {}))
    for key in (
        "data",
        "models",
        "seeds",
        "budgets",
        "max_epochs",
        "min_cells_per_label",
        "exclude_labels",
    ):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    settings.setdefault("data", "reapseq_pbmc")
    settings.setdefault("models", ",".join(DEFAULT_MODELS))
    settings.setdefault("seeds", 3)
    logging.basicConfig(level=logging.WARNING)

    from . import run, write_report

    run(
        data=settings["data"],
        models=[m.strip() for m in settings["models"].split(",") if m.strip()],
        seeds=settings["seeds"],
        budgets=[b.strip() for b in settings["budgets"].split(",")]
        if settings.get("budgets")
        else None,
        out=args.out,
        labels_key=args.labels_key,
        batch_key=args.batch_key,
        max_epochs=settings.get("max_epochs"),
        flow_max_epochs=args.flow_max_epochs,
        n_top_genes=args.n_top_genes or None,
        n_modules=args.n_modules,
        min_cells_per_label=settings.get("min_cells_per_label"),
        exclude_labels=[x for x in (settings.get("exclude_labels") or "").split(",") if x],
        metric_min_cells=args.metric_min_cells,
        gene_likelihood=args.gene_likelihood,
        protein_likelihood=args.protein_likelihood,
    )
    if not args.no_report:
        report = write_report(args.out)
        print(f"Report: {report}")


if __name__ == "__main__":
    main()

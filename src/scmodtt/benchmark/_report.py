"""``report.md`` and figures from a benchmark output folder.

Metrics are defined on the metrics page of the user guide (``docs/user_guide/metrics.md``);
models, their order and their protocols come from :data:`scmodtt.benchmark.MODELS`, the
protocols' descriptions and colours from :data:`scmodtt.benchmark.PROTOCOLS`.

The report reads only what :func:`scmodtt.benchmark.run` wrote — ``results.csv``, the
``metadata_<dataset>.json`` files and the ``synthetic/*.npz`` cells — so it can be rebuilt at any
time, e.g. after a resumed run added seeds. This module writes the text; the statistics come from
``_summary`` and ``_stats``, the settings and commands from ``_reproduce``, the number and table
formats from ``_format`` and the figures from :mod:`scmodtt.pl` (via ``_figures``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._figures import (
    UMAP_MAX_CELLS,
    UMAP_SEED,
    plot_umap_grid,
    write_budget_curves,
    write_metric_bars,
)
from ._format import (
    count,
    counterparts_text,
    described_run,
    markdown_table,
    metric_columns,
    metric_decimals,
    number,
    quantity,
    safe_name,
    wide,
)
from ._reproduce import (
    read_metadata,
    reproduce_commands,
    reproduce_notes,
    settings_text,
    skipped_runs,
)
from ._stats import (
    HEADLINE_METRICS,
    RUN_KEYS,
    VERDICT_BETTER,
    VERDICT_WORSE,
    paired_differences,
)
from ._summary import (
    MEMORY_RESOLUTION_MIB,
    PROTOCOL_DESCRIPTIONS,
    SPEED_MEASUREMENTS,
    SPEED_REFERENCE,
    TABLE_METRICS,
    ordered_datasets,
    run_order,
    speed_summary,
    summarize,
)
from ._zoo import MODELS

SPEED_LABELS = {
    "median_epoch_seconds": "median s / epoch",
    "train_seconds": "train s",
    "peak_memory_increase_mib": "peak memory +MiB",
    "epochs": "epochs",
    "sample_cells_per_s": "sample cells / s",
}
IDEAL_TEXT = {
    "cond_r": "1",
    "interact_r": "1",
    "tstr_f1": "high (≤ trtr_f1)",
    "c2st_auc": "0.5",
    "mmd2_rbf": "0",
    "energy_distance": "0",
    "knn_precision": "1",
    "knn_recall": "1",
}


# ---------------------------------------------------------------------- entry point
def write_report(
    out: str | Path,
    baselines: Sequence[str] = ("flat", "totalvi", "linear"),
    umap: bool = True,
) -> Path:
    """Write ``report.md`` and ``figures/*.png`` for a benchmark output folder.

    Per dataset the report has: a table of mean ± std over seeds of the headline metrics per
    model, protocol and budget (with the oracle as reference and TRTR F1 as TSTR's ceiling);
    paired per-seed differences (model − baseline) with 95% t-intervals and verdicts (see
    :func:`~scmodtt.benchmark._stats.paired_differences`); a speed table relative to totalVI;
    metric bar charts; metric-vs-parameter-count curves for architectures run at several budgets;
    and UMAPs of real test cells against each model's synthetic cells. Every table is preceded by
    the settings it came from, and each dataset by the command that reproduces it.

    Parameters
    ----------
    out
        Output folder of :func:`scmodtt.benchmark.run` (holds ``results.csv``).
    baselines
        Models every MODTT architecture is compared with in the paired differences.
    umap
        Draw the UMAP figures (scanpy PCA → neighbors → UMAP per panel; seconds per panel).

    Returns
    -------
    Path of ``report.md``.

    """
    out = Path(out)
    results_path = out / "results.csv"
    if not results_path.exists():
        raise FileNotFoundError(
            f"No {results_path}: run scmodtt.benchmark.run(out={str(out)!r}) first."
        )
    results = pd.read_csv(results_path, dtype={"budget": str})
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    paired = paired_differences(results, baselines=baselines)
    speed = speed_summary(results)

    lines = _preamble(results, out)
    for dataset in ordered_datasets(results):
        metadata = read_metadata(out, dataset)
        runs = results[results["dataset"] == dataset]
        lines += _dataset_section(
            dataset=dataset,
            runs=runs,
            metadata=metadata,
            out=out,
            summary=summary[summary["dataset"] == dataset],
            paired=paired[paired["dataset"] == dataset],
            speed=speed[speed["dataset"] == dataset],
            figures=figures,
            umap=umap,
            baselines=baselines,
        )
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


# ---------------------------------------------------------------------- report sections
def _preamble(results: pd.DataFrame, out: Path) -> list[str]:
    ideals = ", ".join(f"{m} {IDEAL_TEXT[m]}" for m in HEADLINE_METRICS)
    lines = [
        "# scmodtt benchmark report",
        "",
        f"Written by `scmodtt.benchmark.write_report({str(out)!r})` from `results.csv` "
        f"({len(results):,} rows). Metrics compare synthetic cells with held-out real test cells "
        "in the shared space (RNA log1p of counts per 10⁴, ADT CLR); definitions in "
        "`scmodtt.metrics` and on the metrics page of the user guide "
        "(docs/user_guide/metrics.md).",
        "",
        f"Ideal values: {ideals}. ↑ higher is better, ↓ lower is better; c2st_auc (real-vs-"
        "synthetic classifier AUC) is best at 0.5 and compared as |AUC − 0.5|. The oracle "
        "(resampled real training cells) shows what the metrics give a perfect generator on "
        "these splits; TRTR F1 (classifier trained on real training cells) is TSTR F1's ceiling.",
        "",
        "Generation protocols:",
        "",
        *(f"- `{name}`: {text}." for name, text in PROTOCOL_DESCRIPTIONS.items()),
        "",
        "Models and their protocols: "
        + "; ".join(f"{name}: {', '.join(spec.protocols)}" for name, spec in MODELS.items())
        + ".",
        "",
    ]
    return lines


def _dataset_section(
    *,
    dataset: str,
    runs: pd.DataFrame,
    metadata: dict,
    out: Path,
    summary: pd.DataFrame,
    paired: pd.DataFrame,
    speed: pd.DataFrame,
    figures: Path,
    umap: bool,
    baselines: Sequence[str],
) -> list[str]:
    settings = settings_text(runs, metadata)
    lines = [f"## {dataset}", ""]
    details = [f"data `{metadata.get('data', dataset)}`"]
    if metadata.get("labels_key"):
        details.append(f"labels `{metadata['labels_key']}`")
    if metadata.get("n_top_genes", "absent") != "absent":
        details.append(f"n_top_genes={metadata['n_top_genes']}")
    if metadata.get("n_modules"):
        details.append(f"modules per modality {metadata['n_modules']}")
    if metadata.get("dropped_labels"):
        details.append(f"rare labels dropped: {metadata['dropped_labels']}")
    lines += ["Settings: " + "; ".join(details) + f"; {settings}.", ""]
    skipped = skipped_runs(metadata)
    if skipped:
        lines += [f"Not run (budget out of the architecture's ±10% reach): {skipped}.", ""]
    if metadata.get("versions"):
        versions = ", ".join(f"{k} {v}" for k, v in metadata["versions"].items())
        lines += [f"Versions: {versions}.", ""]
    for command in reproduce_commands(runs, metadata, out):
        lines += [f"Reproduce: `{command}`", ""]
    for note in reproduce_notes(runs, metadata):
        lines += [f"Note: {note}.", ""]

    lines += _metrics_section(summary, settings)
    lines += _paired_section(paired, settings, baselines)
    lines += _speed_section(speed, settings)
    lines += _figures_section(dataset, summary, out, figures, umap, settings)
    return lines


def _metrics_section(summary: pd.DataFrame, settings: str) -> list[str]:
    lines = ["### Metrics", ""]
    if summary.empty:
        return lines + ["No metric rows for this dataset.", ""]
    decimals = summary["metric"].map(metric_decimals(summary))
    cells = summary.assign(
        cell=[
            number(m, d) if not np.isfinite(s) else f"{number(m, d)} ± {number(s, d)}"
            for m, s, d in zip(summary["mean"], summary["std"], decimals, strict=True)
        ],
        seeds=summary.groupby(RUN_KEYS, sort=False)["n_seeds"].transform("max"),
    )
    # A metric undefined on some seeds (e.g. cond_r with too few cells of a type) says so.
    short = cells["n_seeds"] < cells["seeds"]
    cells.loc[short, "cell"] += " (n=" + cells.loc[short, "n_seeds"].astype(str) + ")"
    runs = cells[RUN_KEYS + ["n_params", "seeds"]].drop_duplicates(RUN_KEYS)
    table = run_order(runs.merge(wide(cells, RUN_KEYS), on=RUN_KEYS, how="left"))
    shown = pd.DataFrame(
        {
            "model": table["model"],
            "protocol": table["protocol"],
            "budget": table["budget"],
            "n_params": table["n_params"].map(count),
            "seeds": table["seeds"],
            **metric_columns(table, TABLE_METRICS),
        }
    )
    return lines + [
        f"Mean ± std (ddof=1) over seeds per model, protocol and budget; {settings}; each row "
        "names its generation protocol; n_params is the median trained parameter count (0 for "
        "training-free generators).",
        "",
        *markdown_table(shown),
        "",
    ]


def _verdict_mark(verdict: str) -> str:
    return {VERDICT_BETTER: "**better**", VERDICT_WORSE: "**worse**"}.get(verdict, "n.d.")


def _paired_section(paired: pd.DataFrame, settings: str, baselines: Sequence[str]) -> list[str]:
    lines = ["### Paired differences (model − baseline, per seed)", ""]
    if paired.empty:
        return lines + ["No comparable model–baseline pairs for this dataset.", ""]
    # Precision from the compared values themselves (|AUC − 0.5| is smaller than the AUC).
    decimals = paired["metric"].map(metric_decimals(paired, "baseline_mean"))
    cells = paired.assign(
        cell=[
            f"{number(m, d, True)} [{number(lo, d, True)}, {number(hi, d, True)}] "
            f"{_verdict_mark(v)}"
            for m, lo, hi, v, d in zip(
                paired["mean_difference"],
                paired["ci_low"],
                paired["ci_high"],
                paired["verdict"],
                decimals,
                strict=True,
            )
        ]
    )
    pair_keys = ["comparison", *RUN_KEYS[1:], "baseline", "baseline_protocol", "baseline_budget"]
    pairs = cells.groupby(pair_keys, as_index=False, sort=False)["n_seeds"].min()
    table = pairs.merge(wide(cells, pair_keys), on=pair_keys, how="left")
    # Baseline comparisons first (in the order asked for), then coupling, then module ablations.
    kinds = [f"vs {b}" for b in baselines] + ["TT vs dense coupling"]
    kind_rank = table["comparison"].map({k: i for i, k in enumerate(kinds)}).fillna(len(kinds))
    table = run_order(table)
    table = table.loc[kind_rank.loc[table.index].sort_values(kind="stable").index]
    shown = pd.DataFrame(
        {
            "comparison": table["comparison"],
            "model (protocol, budget)": described_run(table),
            "baseline (protocol, budget)": described_run(table, "baseline"),
            "n": table["n_seeds"],
            **metric_columns(table, HEADLINE_METRICS),
        }
    )
    return lines + [
        f"Per seed, model − baseline on the same split; mean difference [95% t-interval] over "
        f"the seeds both ran (n); {settings}. A verdict (better/worse for the model, in each "
        "metric's better direction) is given only when the interval excludes 0; n.d. = no "
        "detectable difference. c2st_auc differences are of |AUC − 0.5|. Protocol and budget "
        "are matched where the baseline has them (flat; totalVI's latent protocols), "
        f"{counterparts_text()}, else the baseline's only protocol (linear), at the baseline's "
        "default size when it has no other.",
        "",
        *markdown_table(shown),
        "",
    ]


def _speed_section(speed: pd.DataFrame, settings: str) -> list[str]:
    lines = ["### Training and sampling speed", ""]
    if speed.empty:
        return lines + ["No run measurements for this dataset.", ""]
    has_reference = speed["ratio"].notna().any()
    cells = speed.assign(
        cell=[
            f"{v:.0f}"
            if m == "epochs"
            else (f"{quantity(v)} ({r:.2f}×)" if np.isfinite(r) else quantity(v))
            for v, r, m in zip(speed["median"], speed["ratio"], speed["metric"], strict=True)
        ]
    )
    table = run_order(wide(cells, RUN_KEYS))
    shown = pd.DataFrame(
        {
            "model": table["model"],
            "protocol": table["protocol"],
            "budget": table["budget"],
            **{
                SPEED_LABELS.get(m, m): table[m].fillna("–") if m in table else "–"
                for m in ("epochs", *SPEED_MEASUREMENTS)
            },
        }
    )
    counterparts = counterparts_text(SPEED_REFERENCE + "'s")
    reference = (
        f"in brackets the median over seeds of the ratio to {SPEED_REFERENCE} in the same seed "
        f"(sampling speed to {SPEED_REFERENCE}'s under the same protocol; {counterparts})"
        if has_reference
        else f"no {SPEED_REFERENCE} run, so no ratios"
    )
    return lines + [
        f"Medians over seeds; {reference}; {settings}. Training columns repeat on each protocol "
        "row of a model (one training serves all its protocols); sampling speed is per protocol "
        "and includes fitting the protocol's prior, decoding and count sampling; peak memory is "
        "the increase of this process's RSS during training (models trained later reuse memory "
        "freed by earlier ones, so no ratio is taken against an increase under "
        f"{MEMORY_RESOLUTION_MIB:g} MiB; "
        "`--task speed` measures memory in fresh processes).",
        "",
        *markdown_table(shown),
        "",
    ]


def _figures_section(
    dataset: str, summary: pd.DataFrame, out: Path, figures: Path, umap: bool, settings: str
) -> list[str]:
    lines = ["### Figures", ""]
    stem = safe_name(dataset)
    if not summary.empty:
        bars = figures / f"{stem}_metrics.png"
        write_metric_bars(summary, bars)
        lines += [
            f"Metric bars: mean ± std over seeds per model and budget, colour = protocol, "
            f"dashed line = oracle; {settings}.",
            "",
            f"![{dataset} metrics]({bars.relative_to(out).as_posix()})",
            "",
        ]
        curves = figures / f"{stem}_budget_curves.png"
        if write_budget_curves(summary, curves):
            lines += [
                f"Metric vs parameter count for architectures run at several budgets "
                f"(mean ± std over seeds, log x; single-size models as squares); {settings}.",
                "",
                f"![{dataset} budget curves]({curves.relative_to(out).as_posix()})",
                "",
            ]
        else:
            lines += ["No architecture was run at several budgets: no parameter-count curves.", ""]
    if not umap:
        return lines
    umap_path = figures / f"{stem}_umap.png"
    note = plot_umap_grid(out / "synthetic", dataset, umap_path)
    if umap_path.exists() and note is None:
        lines += [
            f"UMAP per panel of real test cells (grey) and one model's synthetic cells (coloured "
            f"by protocol), first seed, default budget; PCA 30 on the concatenation, neighbors, "
            f"UMAP (random_state={UMAP_SEED}); at most {UMAP_MAX_CELLS} cells of each set.",
            "",
            f"![{dataset} UMAP]({umap_path.relative_to(out).as_posix()})",
            "",
        ]
    else:
        lines += [f"UMAP skipped: {note}.", ""]
    return lines

"""``report.md`` and figures from a benchmark output folder.

Metrics are defined on the metrics page of the user guide (``docs/user_guide/metrics.md``);
models, their order and their protocols come from :data:`scmodtt.benchmark.MODELS`, the
protocols' descriptions and colours from :data:`scmodtt.benchmark.PROTOCOLS`.

The report reads only what :func:`scmodtt.benchmark.run` wrote — ``results.csv``, the
``metadata_<dataset>.json`` files and the ``synthetic/*.npz`` cells — so it can be rebuilt at any
time, e.g. after a resumed run added seeds. Figures are drawn on :class:`matplotlib.figure.Figure`
objects rather than through ``pyplot``: they render with the Agg canvas whatever backend the
caller's session uses, and writing a report never changes global matplotlib state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._protocols import PROTOCOLS
from ._stats import (
    COUNTERPARTS,
    HEADLINE_METRICS,
    HIGHER_IS_BETTER,
    IDEAL_DISTANCE_METRICS,
    RUN_KEYS,
    VERDICT_BETTER,
    VERDICT_WORSE,
    paired_differences,
)
from ._zoo import MODELS, module_method_models, sized_models

logger = logging.getLogger(__name__)

#: Order in which models appear in tables and figures (ablations follow their architecture).
MODEL_ORDER = tuple(MODELS)
PROTOCOL_ORDER = tuple(PROTOCOLS)
PROTOCOL_COLOURS = {name: protocol.colour for name, protocol in PROTOCOLS.items()}
PROTOCOL_DESCRIPTIONS = {name: protocol.description for name, protocol in PROTOCOLS.items()}
#: Colour of a protocol the registry does not know (e.g. from an older ``results.csv``).
UNKNOWN_PROTOCOL_COLOUR = "#333333"
#: Columns of the main table: the headline metrics with TRTR beside TSTR as its ceiling.
TABLE_METRICS = (
    "cond_r",
    "interact_r",
    "tstr_f1",
    "trtr_f1",
    "c2st_auc",
    "mmd2_rbf",
    "energy_distance",
    "knn_precision",
    "knn_recall",
)
BAR_METRICS = ("cond_r", "interact_r", "tstr_f1", "c2st_auc")
CURVE_METRICS = ("cond_r", "tstr_f1")
TRAINING_MEASUREMENTS = ("median_epoch_seconds", "train_seconds", "peak_memory_increase_mib")
SPEED_MEASUREMENTS = (*TRAINING_MEASUREMENTS, "sample_cells_per_s")
SPEED_LABELS = {
    "median_epoch_seconds": "median s / epoch",
    "train_seconds": "train s",
    "peak_memory_increase_mib": "peak memory +MiB",
    "epochs": "epochs",
    "sample_cells_per_s": "sample cells / s",
}
SPEED_REFERENCE = "totalvi"
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
#: Cells of each set (real, synthetic) drawn into a UMAP panel; keeps a panel to seconds.
UMAP_MAX_CELLS = 1500
UMAP_SEED = 0
# The CLI's own defaults, left out of the reproduce command when the metadata has them.
_CLI_DEFAULTS = {
    "n_top_genes": 2000,
    "labels_key": "cell_type",
    "gene_likelihood": "nb",
    "protein_likelihood": "nbmixture",
    "metric_min_cells": 20,
}
_SIZED_ARCHITECTURES = tuple(sized_models())


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
    for dataset in _ordered_datasets(results):
        metadata = _read_metadata(out, dataset)
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


# ---------------------------------------------------------------------- tables as data
def summarize(results: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds per run and metric.

    Parameters
    ----------
    results
        Tidy benchmark results.
    metrics
        Metrics to keep.

    Returns
    -------
    ``dataset, model, protocol, budget, metric, mean, std, n_seeds, n_params`` (sample standard
    deviation, ``ddof=1``; missing values are not counted; ``n_params`` is the median over seeds).

    """
    kept = results[results["metric"].isin(list(metrics))].dropna(subset=["value"])
    kept = kept.assign(budget=kept["budget"].astype(str))
    summary = kept.groupby(RUN_KEYS + ["metric"], as_index=False, sort=False).agg(
        mean=("value", "mean"), std=("value", "std"), n_seeds=("seed", "nunique")
    )
    n_params = (
        results.assign(budget=results["budget"].astype(str))
        .groupby(RUN_KEYS, as_index=False, sort=False)["n_params"]
        .median()
    )
    return summary.merge(n_params, on=RUN_KEYS, how="left")


def speed_summary(results: pd.DataFrame, reference: str = SPEED_REFERENCE) -> pd.DataFrame:
    """Medians over seeds of the run measurements, and of their ratio to ``reference`` per seed.

    Parameters
    ----------
    results
        Tidy benchmark results.
    reference
        Model each measurement is divided by, in the same dataset and seed: its training
        measurements, and its sampling speed under the same protocol (or the protocol's
        counterpart, e.g. ``latent_flow`` for ``native``).

    Returns
    -------
    ``dataset, model, protocol, budget, metric, median, ratio, n_seeds`` for the metrics of
    :data:`SPEED_MEASUREMENTS` plus ``epochs``; ``ratio`` is NaN where ``reference`` was not run
    (or, for sampling speed, not under a comparable protocol).

    """
    kept = results[results["metric"].isin([*SPEED_MEASUREMENTS, "epochs"])].dropna(subset=["value"])
    kept = kept.assign(budget=kept["budget"].astype(str))
    per_seed = kept.groupby(RUN_KEYS + ["seed", "metric"], as_index=False, sort=False)[
        "value"
    ].mean()
    # Training measurements are repeated on every protocol row of a run (averaging over the
    # reference's rows gives its single value per seed); sampling speed is per protocol.
    sampling = per_seed["metric"] == "sample_cells_per_s"
    reference_rows = per_seed[per_seed["model"] == reference]
    protocol = per_seed["protocol"]
    compared = protocol.where(
        protocol.isin(set(reference_rows["protocol"])), protocol.map(COUNTERPARTS)
    )
    per_seed["reference_protocol"] = compared.where(sampling, "")
    keys = ["dataset", "seed", "metric", "reference_protocol"]
    reference_values = (
        reference_rows.assign(
            reference_protocol=reference_rows["protocol"].where(sampling[reference_rows.index], "")
        )
        .groupby(keys, as_index=False)["value"]
        .mean()
        .rename(columns={"value": "reference_value"})
    )
    per_seed = per_seed.merge(reference_values, on=keys, how="left")
    per_seed["ratio"] = per_seed["value"] / per_seed["reference_value"]
    return per_seed.groupby(RUN_KEYS + ["metric"], as_index=False, sort=False).agg(
        median=("value", "median"), ratio=("ratio", "median"), n_seeds=("seed", "nunique")
    )


# ---------------------------------------------------------------------- ordering and formatting
def _architecture(model: pd.Series) -> pd.Series:
    return model.str.replace(r":.*$", "", regex=True)


def _run_order(frame: pd.DataFrame, budget_first: bool = False) -> pd.DataFrame:
    """``frame`` (with model and protocol columns, optionally budget) in report order.

    Tables list a model's protocols, each over its budgets; ``budget_first`` lists its budgets,
    each over its protocols (the bar charts group a model's protocols at one budget).
    """
    rank = {name: i for i, name in enumerate(MODEL_ORDER)}
    protocol_rank = {name: i for i, name in enumerate(PROTOCOL_ORDER)}
    budget = frame["budget"] if "budget" in frame else pd.Series("default", index=frame.index)
    keys = pd.DataFrame(
        {
            "architecture": _architecture(frame["model"]).map(rank).fillna(len(rank)),
            "model": frame["model"],
            "protocol": frame["protocol"].map(protocol_rank).fillna(len(protocol_rank)),
            "budget": budget.map(_budget_size),
        },
        index=frame.index,
    )
    # Architecture rank first, then the name: "modtt-tt" sorts before "modtt-tt:random".
    inner = ["budget", "protocol"] if budget_first else ["protocol", "budget"]
    order = keys.sort_values(["architecture", "model", *inner], kind="stable").index
    return frame.loc[order]


def _run_key(model: str, protocol: str) -> tuple:
    """Sort key of one (model, protocol) in report order, for legends."""
    architecture = model.partition(":")[0]
    rank = MODEL_ORDER.index(architecture) if architecture in MODEL_ORDER else len(MODEL_ORDER)
    protocol_rank = PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else 99
    return rank, model, protocol_rank


def _ordered_datasets(results: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(results["dataset"].astype(str)))


def _decimals(frame: pd.DataFrame, column: str = "mean") -> dict[str, int]:
    """Decimals per metric giving ~3 significant digits at the metric's typical magnitude.

    One precision per metric keeps a column aligned and makes a std or an interval as precise as
    the mean beside it; correlations and F1 get 3 decimals, a small MMD² as many as it needs.
    """
    scale = frame.groupby("metric")[column].apply(lambda v: np.nanmedian(np.abs(v)))
    with np.errstate(divide="ignore"):
        needed = np.ceil(-np.log10(scale.where(scale > 0))) + 2
    return needed.clip(lower=3, upper=8).fillna(3).astype(int).to_dict()


def _number(value: float, decimals: int = 3, signed: bool = False) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:{'+' if signed else ''}.{decimals}f}"


def _quantity(value: float) -> str:
    """Seconds, MiB, cells/s: no more digits than the measurement noise supports."""
    if not np.isfinite(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def _count(n_params: float) -> str:
    if not np.isfinite(n_params):
        return "–"
    if n_params >= 1e6:
        return f"{n_params / 1e6:.3g}M"
    if n_params >= 1e3:
        return f"{n_params / 1e3:.3g}k"
    return f"{n_params:.0f}"


def _metric_header(metric: str) -> str:
    if metric == "trtr_f1":
        return "trtr_f1 (ceiling)"
    if metric in IDEAL_DISTANCE_METRICS:
        return f"{metric} (→{IDEAL_DISTANCE_METRICS[metric]:g})"
    return f"{metric} {'↑' if HIGHER_IS_BETTER.get(metric, True) else '↓'}"


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [header, rule, *rows]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# ---------------------------------------------------------------------- metadata and provenance
def _read_metadata(out: Path, dataset: str) -> dict:
    path = out / f"metadata_{dataset}.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("Cannot read %s; the report leaves its settings out.", path)
        return {}


def _seeds(runs: pd.DataFrame) -> list[int]:
    return sorted(int(s) for s in runs["seed"].unique())


def _epochs_text(metadata: dict) -> str:
    if "max_epochs" not in metadata:
        return "max_epochs not recorded (no metadata)"
    cap = metadata["max_epochs"]
    text = f"max_epochs={cap}" if cap is not None else "max_epochs=each model's default"
    if metadata.get("flow_max_epochs") is not None:
        text += f", flow_max_epochs={metadata['flow_max_epochs']}"
    return text + ", early stopping on validation loss"


def _settings_text(runs: pd.DataFrame, metadata: dict) -> str:
    seeds = _seeds(runs)
    return f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), {_epochs_text(metadata)}"


def reproduce_commands(runs: pd.DataFrame, metadata: dict, out: str | Path) -> list[str]:
    """``scmodtt-benchmark`` command lines that recompute the rows of one dataset.

    The rows of ``results.csv`` (models, seeds, budgets) say what to rerun; the metadata says how
    (data, epochs, features, labels). One command cannot run the sized models both at their
    default size and at explicit budgets, so that case gets two commands sharing ``--out``: the
    second resumes from the first's ``results.csv``.

    Parameters
    ----------
    runs
        Result rows of one dataset.
    metadata
        Its ``metadata_<dataset>.json`` (may be empty).
    out
        Output folder to name in the commands.

    Returns
    -------
    The commands, in the order to run them.

    """
    models = _run_order(runs[["model", "protocol"]].drop_duplicates("model"))["model"].tolist()
    sized = [m for m in models if m.partition(":")[0] in _SIZED_ARCHITECTURES]
    budgets = runs.loc[runs["model"].isin(sized), "budget"].astype(str).unique()
    explicit = sorted((b for b in budgets if b != "default"), key=_budget_size)
    seeds = _seeds(runs)
    seeds_flag = len(seeds) if seeds == list(range(len(seeds))) else ",".join(map(str, seeds))
    flags = [f"--data {metadata.get('data', runs['dataset'].iloc[0])}", f"--seeds {seeds_flag}"]
    for key, default in _CLI_DEFAULTS.items():
        if key in metadata and metadata[key] != default:
            value = metadata[key] if not (key == "n_top_genes" and metadata[key] is None) else 0
            flags.append(f"--{key.replace('_', '-')} {value}")
    for key in ("max_epochs", "flow_max_epochs", "batch_key", "min_cells_per_label"):
        if metadata.get(key) is not None:
            flags.append(f"--{key.replace('_', '-')} {metadata[key]}")
    if metadata.get("exclude_labels"):
        flags.append(f"--exclude-labels '{','.join(metadata['exclude_labels'])}'")
    if metadata.get("n_modules"):
        sizes = ",".join(f"{mod}={n}" for mod, n in metadata["n_modules"].items())
        flags.append(f"--n-modules {sizes}")
    flags.append(f"--out {out}")
    common = " ".join(flags)
    commands = []
    if "default" in budgets or not sized:
        commands.append(f"scmodtt-benchmark --models {','.join(models)} {common}")
    if explicit:
        chosen = sized if commands else models
        commands.append(
            f"scmodtt-benchmark --models {','.join(chosen)} --budgets {','.join(explicit)} {common}"
        )
    return commands


def _budget_size(budget: str) -> float:
    """Parameter target of a budget string; ``default`` (the models' own sizes) sorts first."""
    from ._budget import parse_budget

    if budget == "default":
        return -1.0
    try:
        return float(parse_budget(budget))
    except ValueError:
        return float("inf")


def _reproduce_notes(runs: pd.DataFrame, metadata: dict) -> list[str]:
    notes = []
    seeds = _seeds(runs)
    if seeds != list(range(len(seeds))):
        notes.append(
            f"the CLI runs seeds 0…n−1; these rows have seeds {seeds}: use "
            f"`scmodtt.benchmark.run(seeds={seeds}, ...)`"
        )
    if metadata.get("dropped_labels") and "min_cells_per_label" not in metadata:
        notes.append(
            "labels were dropped: pass the same `--min-cells-per-label` / `--exclude-labels`"
        )
    if not metadata:
        notes.append(
            f"no metadata_{runs['dataset'].iloc[0]}.json: data and epochs are not recorded"
        )
    return notes


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
    settings = _settings_text(runs, metadata)
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
    skipped = _skipped_runs(metadata)
    if skipped:
        lines += [f"Not run (budget out of the architecture's ±10% reach): {skipped}.", ""]
    if metadata.get("versions"):
        versions = ", ".join(f"{k} {v}" for k, v in metadata["versions"].items())
        lines += [f"Versions: {versions}.", ""]
    for command in reproduce_commands(runs, metadata, out):
        lines += [f"Reproduce: `{command}`", ""]
    for note in _reproduce_notes(runs, metadata):
        lines += [f"Note: {note}.", ""]

    lines += _metrics_section(summary, settings)
    lines += _paired_section(paired, settings, baselines)
    lines += _speed_section(speed, settings)
    lines += _figures_section(dataset, summary, out, figures, umap, settings)
    return lines


def _skipped_runs(metadata: dict) -> str:
    """``model at budget, …`` for the runs the benchmark skipped as unreachable (one per pair)."""
    pairs = {
        (run["model"], run["budget"]) for run in metadata.get("runs", []) if run.get("skipped")
    }
    return ", ".join(f"{model} at {budget}" for model, budget in sorted(pairs, key=str))


def _metrics_section(summary: pd.DataFrame, settings: str) -> list[str]:
    lines = ["### Metrics", ""]
    if summary.empty:
        return lines + ["No metric rows for this dataset.", ""]
    decimals = summary["metric"].map(_decimals(summary))
    cells = summary.assign(
        cell=[
            _number(m, d) if not np.isfinite(s) else f"{_number(m, d)} ± {_number(s, d)}"
            for m, s, d in zip(summary["mean"], summary["std"], decimals, strict=True)
        ],
        seeds=summary.groupby(RUN_KEYS, sort=False)["n_seeds"].transform("max"),
    )
    # A metric undefined on some seeds (e.g. cond_r with too few cells of a type) says so.
    short = cells["n_seeds"] < cells["seeds"]
    cells.loc[short, "cell"] += " (n=" + cells.loc[short, "n_seeds"].astype(str) + ")"
    runs = cells[RUN_KEYS + ["n_params", "seeds"]].drop_duplicates(RUN_KEYS)
    table = _run_order(runs.merge(_wide(cells, RUN_KEYS), on=RUN_KEYS, how="left"))
    shown = pd.DataFrame(
        {
            "model": table["model"],
            "protocol": table["protocol"],
            "budget": table["budget"],
            "n_params": table["n_params"].map(_count),
            "seeds": table["seeds"],
            **_metric_columns(table, TABLE_METRICS),
        }
    )
    return lines + [
        f"Mean ± std (ddof=1) over seeds per model, protocol and budget; {settings}; each row "
        "names its generation protocol; n_params is the median trained parameter count (0 for "
        "training-free generators).",
        "",
        *_markdown_table(shown),
        "",
    ]


def _wide(cells: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys``, one column of formatted ``cell`` text per metric."""
    return cells.pivot(index=keys, columns="metric", values="cell").reset_index()


def _metric_columns(table: pd.DataFrame, metrics: Sequence[str]) -> dict[str, pd.Series]:
    return {_metric_header(m): table[m].fillna("–") for m in metrics if m in table}


def _verdict_mark(verdict: str) -> str:
    return {VERDICT_BETTER: "**better**", VERDICT_WORSE: "**worse**"}.get(verdict, "n.d.")


def _described_run(frame: pd.DataFrame, prefix: str = "") -> pd.Series:
    """``model (protocol, budget)``; ``prefix="baseline"`` reads the baseline's columns."""
    model, protocol, budget = (
        (prefix, f"{prefix}_protocol", f"{prefix}_budget")
        if prefix
        else ("model", "protocol", "budget")
    )
    return frame[model] + " (" + frame[protocol] + ", " + frame[budget] + ")"


def _paired_section(paired: pd.DataFrame, settings: str, baselines: Sequence[str]) -> list[str]:
    lines = ["### Paired differences (model − baseline, per seed)", ""]
    if paired.empty:
        return lines + ["No comparable model–baseline pairs for this dataset.", ""]
    # Precision from the compared values themselves (|AUC − 0.5| is smaller than the AUC).
    decimals = paired["metric"].map(_decimals(paired, "baseline_mean"))
    cells = paired.assign(
        cell=[
            f"{_number(m, d, True)} [{_number(lo, d, True)}, {_number(hi, d, True)}] "
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
    table = pairs.merge(_wide(cells, pair_keys), on=pair_keys, how="left")
    # Baseline comparisons first (in the order asked for), then coupling, then module ablations.
    kinds = [f"vs {b}" for b in baselines] + ["TT vs dense coupling"]
    kind_rank = table["comparison"].map({k: i for i, k in enumerate(kinds)}).fillna(len(kinds))
    table = _run_order(table)
    table = table.loc[kind_rank.loc[table.index].sort_values(kind="stable").index]
    shown = pd.DataFrame(
        {
            "comparison": table["comparison"],
            "model (protocol, budget)": _described_run(table),
            "baseline (protocol, budget)": _described_run(table, "baseline"),
            "n": table["n_seeds"],
            **_metric_columns(table, HEADLINE_METRICS),
        }
    )
    return lines + [
        f"Per seed, model − baseline on the same split; mean difference [95% t-interval] over "
        f"the seeds both ran (n); {settings}. A verdict (better/worse for the model, in each "
        "metric's better direction) is given only when the interval excludes 0; n.d. = no "
        "detectable difference. c2st_auc differences are of |AUC − 0.5|. Protocol and budget "
        "are matched where the baseline has them (flat; totalVI's latent protocols), "
        f"{_counterparts_text()}, else the baseline's only protocol (linear), at the baseline's "
        "default size when it has no other.",
        "",
        *_markdown_table(shown),
        "",
    ]


def _counterparts_text(whose: str = "the baseline's") -> str:
    """``native against the baseline's latent_flow`` for every protocol with a counterpart."""
    return ", ".join(f"{name} against {whose} {other}" for name, other in COUNTERPARTS.items())


def _speed_section(speed: pd.DataFrame, settings: str) -> list[str]:
    lines = ["### Training and sampling speed", ""]
    if speed.empty:
        return lines + ["No run measurements for this dataset.", ""]
    has_reference = speed["ratio"].notna().any()
    cells = speed.assign(
        cell=[
            f"{v:.0f}"
            if m == "epochs"
            else (f"{_quantity(v)} ({r:.2f}×)" if np.isfinite(r) else _quantity(v))
            for v, r, m in zip(speed["median"], speed["ratio"], speed["metric"], strict=True)
        ]
    )
    table = _run_order(_wide(cells, RUN_KEYS))
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
    counterparts = _counterparts_text(SPEED_REFERENCE + "'s")
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
        "the increase during training.",
        "",
        *_markdown_table(shown),
        "",
    ]


def _figures_section(
    dataset: str, summary: pd.DataFrame, out: Path, figures: Path, umap: bool, settings: str
) -> list[str]:
    lines = ["### Figures", ""]
    stem = _safe_name(dataset)
    if not summary.empty:
        bars = figures / f"{stem}_metrics.png"
        plot_metric_bars(summary, dataset, bars)
        lines += [
            f"Metric bars: mean ± std over seeds per model and budget, colour = protocol, "
            f"dashed line = oracle; {settings}.",
            "",
            f"![{dataset} metrics]({bars.relative_to(out).as_posix()})",
            "",
        ]
        curves = figures / f"{stem}_budget_curves.png"
        if plot_budget_curves(summary, dataset, curves):
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


# ---------------------------------------------------------------------- figures
def _model_colours(models: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    return {model: palette[i % len(palette)] for i, model in enumerate(models)}


def _panel_title(metric: str) -> str:
    if metric in IDEAL_DISTANCE_METRICS:
        return f"{metric} ({IDEAL_DISTANCE_METRICS[metric]:g} is ideal)"
    return f"{metric} ({'higher' if HIGHER_IS_BETTER.get(metric, True) else 'lower'} is better)"


def plot_metric_bars(
    summary: pd.DataFrame, dataset: str, path: Path, metrics: Sequence[str] = BAR_METRICS
) -> Path:
    """Bars of mean ± std per model and budget, coloured by protocol, with the oracle as a line.

    Parameters
    ----------
    summary
        Rows of :func:`summarize` for one dataset.
    dataset
        Dataset name for the title.
    path
        PNG to write.
    metrics
        One panel per metric.

    Returns
    -------
    ``path``.

    """
    generators = summary[summary["model"] != "oracle"]
    runs = _run_order(generators[RUN_KEYS].drop_duplicates(), budget_first=True)
    # One slot per (model, budget) group, its protocols side by side, a gap between groups.
    runs = runs.assign(
        group=runs["model"] + " " + runs["budget"].where(runs["budget"] != "default", "")
    )
    group_index = pd.Series(pd.factorize(runs["group"])[0], index=runs.index)
    runs["x"] = np.arange(len(runs)) + 0.6 * group_index
    centres = runs.groupby("group", sort=False)["x"].mean()

    fig = Figure(figsize=(max(8.0, 0.5 * len(runs) + 3.0), 7.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    oracle = summary[summary["model"] == "oracle"].set_index("metric")
    for ax, metric in zip(axes, metrics, strict=False):
        values = runs.merge(summary[summary["metric"] == metric], on=RUN_KEYS, how="left")
        ax.bar(
            values["x"],
            values["mean"],
            yerr=values["std"].fillna(0),
            color=values["protocol"].map(PROTOCOL_COLOURS).fillna(UNKNOWN_PROTOCOL_COLOUR),
            width=0.8,
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
        if metric in oracle.index:
            mean, std = oracle.loc[metric, ["mean", "std"]].astype(float)
            ax.axhline(mean, color="black", linestyle="--", linewidth=1)
            if np.isfinite(std):
                ax.axhspan(mean - std, mean + std, color="black", alpha=0.08, linewidth=0)
        if metric == "tstr_f1" and "trtr_f1" in set(summary["metric"]):
            trtr = summary.loc[summary["metric"] == "trtr_f1", "mean"].mean()
            ax.axhline(trtr, color="black", linestyle=":", linewidth=1)
        ax.set_title(_panel_title(metric), fontsize=10)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    for ax in axes[-2:]:
        ax.set_xticks(
            centres.to_numpy(),
            [g.strip() for g in centres.index],
            rotation=30,
            ha="right",
            rotation_mode="anchor",
        )
        ax.tick_params(axis="x", labelbottom=True, labelsize=8)
    handles = [
        Patch(color=PROTOCOL_COLOURS.get(p, UNKNOWN_PROTOCOL_COLOUR), label=p)
        for p in PROTOCOL_ORDER
        if p in set(runs["protocol"])
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="oracle (± std band)"))
    if "tstr_f1" in metrics and "trtr_f1" in set(summary["metric"]):
        handles.append(Line2D([], [], color="black", linestyle=":", label="TRTR F1 (ceiling)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    seeds = int(summary["n_seeds"].max())
    fig.suptitle(f"{dataset}: mean ± std over {seeds} seeds; bar colour = generation protocol")
    fig.savefig(path, dpi=120)
    return path


def plot_budget_curves(
    summary: pd.DataFrame, dataset: str, path: Path, metrics: Sequence[str] = CURVE_METRICS
) -> bool:
    """Metric vs parameter count (log x) per architecture and protocol, mean ± std over seeds.

    Lines for models run at two or more budgets; trained models run at one size (scVI, totalVI)
    as single points; the oracle as a horizontal line. Nothing is written when no model has
    several budgets.

    Parameters
    ----------
    summary, dataset, path, metrics
        As in :func:`plot_metric_bars`.

    Returns
    -------
    Whether the figure was written.

    """
    trained = summary[summary["n_params"] > 0]
    n_budgets = trained.groupby("model")["budget"].nunique()
    curved = n_budgets.index[n_budgets >= 2]
    if curved.empty:
        return False
    ordered_models = _run_order(trained.drop_duplicates("model"))["model"].tolist()
    colours = _model_colours(ordered_models)
    styles = {"native": "-", "latent_gaussian": "--", "latent_flow": "-."}
    fig = Figure(figsize=(5.0 * len(metrics), 4.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
        rows = trained[trained["metric"] == metric].sort_values("n_params", kind="stable")
        lines = rows.groupby(["model", "protocol"], sort=False)
        for (model, protocol), line in sorted(lines, key=lambda item: _run_key(*item[0])):
            single = model not in curved
            ax.errorbar(
                line["n_params"],
                line["mean"],
                yerr=line["std"].fillna(0),
                color=colours[model],
                linestyle="none" if single else styles.get(protocol, ":"),
                marker="s" if single else "o",
                markersize=5,
                capsize=3,
                label=f"{model} ({protocol})",
            )
        oracle = summary[(summary["model"] == "oracle") & (summary["metric"] == metric)]
        if not oracle.empty:
            ax.axhline(oracle["mean"].iloc[0], color="black", linestyle=":", label="oracle")
        ax.set_xscale("log")
        ax.set_xlabel("trained parameters")
        ax.set_ylabel(metric)
        ax.set_title(_panel_title(metric), fontsize=10)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(f"{dataset}: metric vs parameter count (mean ± std over seeds)")
    fig.savefig(path, dpi=120)
    return True


def _umap_coordinates(values: np.ndarray, seed: int = UMAP_SEED) -> np.ndarray:
    """2-D UMAP of cells × features: PCA (≤ 30) → neighbors → UMAP, all seeded."""
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(np.asarray(values, dtype=np.float32))
    n_comps = max(1, min(30, adata.n_obs - 1, adata.n_vars - 1))
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    sc.pp.neighbors(adata, n_neighbors=min(15, adata.n_obs - 1), random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    return adata.obsm["X_umap"]


def _subsample(values: np.ndarray, max_cells: int, seed: int) -> np.ndarray:
    finite = values[np.isfinite(values).all(axis=1)]  # a diverged decoder must not break PCA
    if len(finite) <= max_cells:
        return finite
    chosen = np.random.default_rng(seed).choice(len(finite), size=max_cells, replace=False)
    return finite[np.sort(chosen)]


def _synthetic_panels(folder: Path, dataset: str) -> pd.DataFrame:
    """``path, model, protocol`` of the saved synthetic cells of ``dataset``, in report order."""
    prefix = f"{dataset}__"
    rows = []
    for path in sorted(folder.glob(f"{prefix}*.npz")):
        model, _, protocol = path.stem[len(prefix) :].rpartition("__")
        if model and model != "real":
            rows.append({"path": path, "model": model, "protocol": protocol})
    panels = pd.DataFrame(rows, columns=["path", "model", "protocol"])
    # Saved names spell "modtt-tt:random" as "modtt-tt-random"; order them after their base.
    with_methods = "|".join(map(re.escape, module_method_models()))
    panels["model"] = panels["model"].str.replace(
        rf"^({with_methods})-(\w+)$", r"\1:\2", regex=True
    )
    return _run_order(panels)


def plot_umap_grid(
    folder: Path, dataset: str, path: Path, max_cells: int = UMAP_MAX_CELLS
) -> str | None:
    """UMAP panels of real test cells (grey) against each saved set of synthetic cells.

    Each panel embeds its own concatenation of real and synthetic cells, so panels are not on
    shared axes; what a panel shows is whether the synthetic cells cover the real cells' clusters.

    Parameters
    ----------
    folder
        ``synthetic/`` folder of a benchmark output (``<dataset>__<model>__<protocol>.npz`` and
        ``<dataset>__real__test.npz``, arrays ``values`` and ``labels``).
    dataset
        Dataset whose files are drawn.
    path
        PNG to write.
    max_cells
        Cells drawn from each set, with a seeded generator.

    Returns
    -------
    ``None`` when written, else why not (missing files, no usable panel).

    """
    real_path = folder / f"{dataset}__real__test.npz"
    if not folder.is_dir():
        return f"no folder {folder.name}/ with synthetic cells"
    if not real_path.exists():
        return f"no real test cells ({real_path.name}) to compare with"
    panels = _synthetic_panels(folder, dataset)
    if panels.empty:
        return "no synthetic cells were saved"
    with np.load(real_path, allow_pickle=False) as saved:
        real = _subsample(saved["values"], max_cells, UMAP_SEED)
    embedded, skipped = [], []
    for panel in panels.itertuples(index=False):
        with np.load(panel.path, allow_pickle=False) as saved:
            synthetic = _subsample(saved["values"], max_cells, UMAP_SEED)
        if synthetic.ndim != 2 or synthetic.shape[1] != real.shape[1] or len(synthetic) < 2:
            skipped.append(panel.path.name)
            continue
        coordinates = _umap_coordinates(np.vstack([real, synthetic]))
        embedded.append((panel, coordinates[: len(real)], coordinates[len(real) :]))
    if skipped:
        logger.warning("UMAP skipped %s: features differ from the real test cells.", skipped)
    if not embedded:
        return "no synthetic set has the real test cells' features"

    n_columns = min(4, len(embedded))
    n_rows = int(np.ceil(len(embedded) / n_columns))
    fig = Figure(figsize=(2.8 * n_columns, 2.8 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_columns)).ravel()
    for ax, (panel, real_xy, synthetic_xy) in zip(axes, embedded, strict=False):
        ax.scatter(*real_xy.T, s=3, color="#a0a0a0", alpha=0.5, linewidths=0, rasterized=True)
        colour = PROTOCOL_COLOURS.get(panel.protocol, UNKNOWN_PROTOCOL_COLOUR)
        ax.scatter(*synthetic_xy.T, s=2, color=colour, alpha=0.6, linewidths=0, rasterized=True)
        ax.set_title(f"{panel.model}\n{panel.protocol}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(embedded) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{dataset}: real test cells (grey) vs synthetic cells (colour = protocol), first seed",
        fontsize=10,
    )
    fig.savefig(path, dpi=120)
    return None

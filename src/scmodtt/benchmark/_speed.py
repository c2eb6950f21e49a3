"""Training speed, memory and sampling speed of MODTT against totalVI/scVI, each run in a fresh
process.

Each (model, size, repeat) trains in its own Python process so that its peak resident memory is
its own; repeats are interleaved across models so that slow phases of a noisy machine hit every
model. Ratios are taken within one call, against the reference model on the same data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mudata
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import datasets, pp
from ._budget import BudgetSolver, parse_budget
from ._data import detected_genes, with_genes
from ._zoo import build_model, trained_models

#: Models of the speed benchmark, in table order.
SPEED_MODELS = ("modtt-tt", "modtt-dense", "flat", "scvi", "totalvi")
#: Feature sets: 2,000 HVGs in 50 RNA modules, or every gene detected in ≥ 10 cells in 300.
FEATURE_SETS = {
    "hvg2000": {"n_top_genes": 2000, "rna": 50},
    "whole": {"n_top_genes": None, "rna": 300},
}
_BUDGET_VARIANTS = {"modtt-tt": "tt", "modtt-dense": "dense"}


def measure_training_speed(
    mdata_path: str | Path,
    models: Sequence[str] = ("modtt-tt", "modtt-dense", "totalvi"),
    n_epochs: int = 8,
    n_warmup_epochs: int = 2,
    repeats: int = 3,
    labels_key: str | None = "cell_type",
    batch_key: str | None = None,
    reference: str = "totalvi",
    seed: int = 0,
    sizes: dict[str, dict[str, dict]] | None = None,
    n_sample_cells: int = 0,
    threads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seconds per epoch, peak memory, parameters and ``sample`` speed of models on the same data.

    Parameters
    ----------
    mdata_path
        ``.h5mu`` with raw counts in ``rna`` and ``prot`` (and module tables for MODTT).
    models
        Names of trained models of :data:`scmodtt.benchmark.MODELS`.
    n_epochs
        Timed epochs per run, after ``n_warmup_epochs`` untimed ones.
    n_warmup_epochs
        Epochs excluded from the timing (data-loader and allocator warm-up).
    repeats
        Runs per model and size; the summary takes medians over them.
    labels_key, batch_key
        Passed to each model's set-up.
    reference
        Model whose median epoch time and memory the ratios are relative to.
    seed
        ``scvi.settings.seed`` of every run.
    sizes
        Extra sizes per model: ``{model: {budget name: constructor kwargs}}``; every model also
        runs at its default size (budget ``"default"``).
    n_sample_cells
        Synthetic cells generated (flow prior, ODE + decoding + counts) and timed after each
        MODTT-family run; 0 skips sampling.
    threads
        torch threads per run (``None``: torch's default).

    Returns
    -------
    ``(runs, summary)``: one row per run, and per model and budget the medians and the ratios to
    ``reference`` at its default size.

    """
    unknown = sorted(set(models) - set(trained_models()))
    if unknown:
        raise ValueError(f"Unknown trained model(s) {unknown}; choose from {trained_models()}.")
    variants = [(name, "default", {}) for name in models]
    for name, extra in (sizes or {}).items():
        variants += [(name, budget, kwargs) for budget, kwargs in extra.items()]
    rows = []
    jobs = [(repeat, *variant) for repeat in range(repeats) for variant in variants]
    for repeat, name, budget, kwargs in tqdm(jobs, desc="speed runs"):
        result = _run_in_fresh_process(
            {
                "data": str(mdata_path),
                "model": name,
                "model_kwargs": kwargs,
                "n_epochs": n_warmup_epochs + n_epochs,
                "labels_key": labels_key,
                "batch_key": batch_key,
                "seed": seed,
                "threads": threads,
                "n_sample_cells": n_sample_cells,
            }
        )
        timed = result["epoch_seconds"][n_warmup_epochs:]
        rows.append(
            {
                "model": name,
                "budget": budget,
                "repeat": repeat,
                "n_params": result["n_params"],
                "median_epoch_s": float(np.median(timed)),
                "peak_rss_mib": result["peak_rss_mib"],
                "data_rss_mib": result["data_rss_mib"],
                "training_rss_increase_mib": result["training_rss_increase_mib"],
                "sample_cells_per_s": result.get("sample_cells_per_s", np.nan),
                "epoch_seconds": json.dumps([round(s, 4) for s in timed]),
            }
        )
    runs = pd.DataFrame(rows)
    return runs, summarize_speed(runs, reference)


def summarize_speed(runs: pd.DataFrame, reference: str = "totalvi") -> pd.DataFrame:
    """Medians over repeats per model and budget, with ratios to ``reference`` (default size)."""
    summary = runs.groupby(["model", "budget"], sort=False).agg(
        n_params=("n_params", "first"),
        median_epoch_s=("median_epoch_s", "median"),
        peak_rss_mib=("peak_rss_mib", "median"),
        data_rss_mib=("data_rss_mib", "median"),
        training_rss_increase_mib=("training_rss_increase_mib", "median"),
        sample_cells_per_s=("sample_cells_per_s", "median"),
        repeats=("repeat", "nunique"),
    )
    if (reference, "default") in summary.index:
        baseline = summary.loc[(reference, "default")]
        for column in ("median_epoch_s", "peak_rss_mib", "training_rss_increase_mib", "n_params"):
            summary[f"{column}_ratio_to_{reference}"] = summary[column] / baseline[column]
    return summary


def _run_in_fresh_process(job: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        job = {**job, "out": str(Path(tmp) / "run.json")}
        spec = Path(tmp) / "job.json"
        spec.write_text(json.dumps(job))
        command = [sys.executable, "-m", "scmodtt.benchmark._speed_worker", str(spec)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(job["out"]).read_text())


def prepare_speed_data(mdata: mudata.MuData, feature_set: str, path: str | Path) -> Path:
    """Write the speed benchmark's data: the cells, a feature set and its Ward modules.

    ``feature_set`` is a key of :data:`FEATURE_SETS`: 2,000 HVGs (plus nothing else) in 50 RNA
    modules, or every gene detected in ≥ 10 cells in 300; every ADT in 20 modules.
    """
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"Unknown feature set {feature_set!r}; choose from {list(FEATURE_SETS)}.")
    setting = FEATURE_SETS[feature_set]
    if setting["n_top_genes"] is None:
        subset = with_genes(mdata, mdata["rna"].var_names[detected_genes(mdata)])
    else:
        subset = pp.highly_variable_genes(mdata, n_top_genes=setting["n_top_genes"], subset=True)
    pp.find_modules(subset, n_modules={"rna": setting["rna"], "prot": 20}, method="ward")
    path = Path(path)
    subset.write(path)
    return path


def speed(
    data: str | mudata.MuData = "reapseq_pbmc",
    out: str | Path = "results/speed",
    models: Sequence[str] = SPEED_MODELS,
    feature_sets: Sequence[str] = ("hvg2000", "whole"),
    budgets: Sequence[str] = ("200k", "1m"),
    repeats: int = 3,
    n_epochs: int = 6,
    n_warmup_epochs: int = 2,
    n_sample_cells: int = 20_000,
    labels_key: str = "cell_type",
    threads: int | None = None,
) -> pd.DataFrame:
    """The speed benchmark: every model on the same data, each run in a fresh process.

    Per feature set (2,000 HVGs; whole transcriptome) each model trains ``repeats`` times at its
    default size, interleaved with the others; MODTT-tt and MODTT-dense also run at each of
    ``budgets`` (2,000 HVGs only). Seconds per epoch after warm-up, peak resident memory and the
    training-time memory increase, and MODTT's ``sample`` cells per second (flow prior, ODE +
    decoding + counts) are reported as medians and as ratios to totalVI at its default size.

    Parameters
    ----------
    data
        Bundled dataset name or a MuData with raw counts in ``rna`` and ``prot``.
    out
        Folder for the prepared data, ``speed_runs.csv``, ``speed_summary.csv`` and ``speed.md``.
    models
        Models at their default size.
    feature_sets
        Keys of :data:`FEATURE_SETS`.
    budgets
        Parameter budgets for MODTT-tt vs MODTT-dense (e.g. ``"200k"``, ``"1m"``).
    repeats, n_epochs, n_warmup_epochs
        Runs per model and size; timed and untimed epochs per run.
    n_sample_cells
        Synthetic cells timed per MODTT run.
    labels_key
        Cell-type column.
    threads
        torch threads per run.

    Returns
    -------
    The summary (also in ``out/speed_summary.csv``), indexed by feature set, model and budget.

    Examples
    --------
    >>> from scmodtt.benchmark import speed
    >>> summary = speed("reapseq_pbmc", out="results/speed", repeats=3)  # doctest: +SKIP

    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mudata.set_options(pull_on_update=False)
    mdata = getattr(datasets, data)() if isinstance(data, str) else data
    summaries, all_runs = [], []
    for feature_set in feature_sets:
        path = out / f"speed_{feature_set}.h5mu"
        if not path.exists():
            prepare_speed_data(mdata, feature_set, path)
        sizes = (
            _budget_sizes(path, models, budgets, labels_key) if feature_set == "hvg2000" else None
        )
        runs, summary = measure_training_speed(
            path,
            models=models,
            n_epochs=n_epochs,
            n_warmup_epochs=n_warmup_epochs,
            repeats=repeats,
            labels_key=labels_key,
            sizes=sizes,
            n_sample_cells=n_sample_cells,
            threads=threads,
        )
        all_runs.append(runs.assign(features=feature_set))
        summaries.append(pd.concat({feature_set: summary}, names=["features"]))
    summary = pd.concat(summaries)
    pd.concat(all_runs).to_csv(out / "speed_runs.csv", index=False)
    summary.to_csv(out / "speed_summary.csv")
    (out / "speed.md").write_text(speed_table(summary))
    return summary


def _budget_sizes(path, models, budgets, labels_key) -> dict[str, dict[str, dict]]:
    chosen = [m for m in models if m in _BUDGET_VARIANTS]
    if not chosen or not budgets:
        return {}
    probe = build_model("modtt-tt", mudata.read_h5mu(path), labels_key=labels_key)
    solver = BudgetSolver.from_model(probe)
    sizes = {}
    for name in chosen:
        for budget in budgets:
            try:
                kwargs, _ = solver.solve(_BUDGET_VARIANTS[name], parse_budget(budget))
            except ValueError:
                continue  # dense coupling cannot land on every budget; the table shows the gap
            sizes.setdefault(name, {})[budget] = kwargs
    return sizes


def speed_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (one row per feature set, model and size).

    Memory is the resident-memory increase while training: the process's peak is set by reading
    the data before training starts, which is the same for every model.
    """
    lines = [
        "| features | model | size | params | s / epoch | × totalVI | training memory MiB "
        "| × totalVI | sample cells / s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (features, model, budget), row in summary.iterrows():
        ratio = row.get("median_epoch_s_ratio_to_totalvi", np.nan)
        memory = row.get("training_rss_increase_mib_ratio_to_totalvi", np.nan)
        cells = row["sample_cells_per_s"]
        lines.append(
            f"| {features} | {model} | {budget} | {int(row['n_params']):,} "
            f"| {row['median_epoch_s']:.3f} | {ratio:.2f} "
            f"| {row['training_rss_increase_mib']:.0f} | {memory:.2f} "
            f"| {'—' if np.isnan(cells) else f'{cells:,.0f}'} |"
        )
    return "\n".join(lines) + "\n"

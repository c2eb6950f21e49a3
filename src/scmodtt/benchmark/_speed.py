"""Training speed and memory of MODTT against totalVI/scVI, each run in a fresh process.

Each (model, repeat) trains in its own Python process so that its peak resident memory is its own;
repeats are interleaved across models so that slow phases of a noisy machine hit every model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._zoo import trained_models


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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seconds per epoch, peak memory and parameter counts of each model on the same data.

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
        Runs per model; the summary takes medians over them.
    labels_key, batch_key
        Passed to each model's set-up.
    reference
        Model whose median epoch time and memory the ratios are relative to.
    seed
        ``scvi.settings.seed`` of every run.

    Returns
    -------
    ``(runs, summary)``: one row per run, and per model the medians and the ratios to ``reference``.

    """
    unknown = sorted(set(models) - set(trained_models()))
    if unknown:
        raise ValueError(f"Unknown trained model(s) {unknown}; choose from {trained_models()}.")
    rows = []
    jobs = [(repeat, name) for repeat in range(repeats) for name in models]
    for repeat, name in tqdm(jobs, desc="training-speed runs"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run.json"
            command = [
                sys.executable,
                "-m",
                "scmodtt.benchmark._speed_worker",
                str(mdata_path),
                name,
                str(n_warmup_epochs + n_epochs),
                str(out),
                str(labels_key),
                str(batch_key),
                str(seed),
            ]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            result = json.loads(out.read_text())
        timed = result["epoch_seconds"][n_warmup_epochs:]
        rows.append(
            {
                "model": name,
                "repeat": repeat,
                "n_params": result["n_params"],
                "median_epoch_s": float(np.median(timed)),
                "peak_rss_mib": result["peak_rss_mib"],
                "data_rss_mib": result["data_rss_mib"],
                "training_rss_increase_mib": result["training_rss_increase_mib"],
                "epoch_seconds": json.dumps([round(s, 4) for s in timed]),
            }
        )
    runs = pd.DataFrame(rows)
    summary = runs.groupby("model", sort=False).agg(
        n_params=("n_params", "first"),
        median_epoch_s=("median_epoch_s", "median"),
        peak_rss_mib=("peak_rss_mib", "median"),
        data_rss_mib=("data_rss_mib", "median"),
        training_rss_increase_mib=("training_rss_increase_mib", "median"),
    )
    if reference in summary.index:
        for column in ("median_epoch_s", "peak_rss_mib", "training_rss_increase_mib", "n_params"):
            summary[f"{column}_ratio_to_{reference}"] = (
                summary[column] / summary.loc[reference, column]
            )
    return runs, summary

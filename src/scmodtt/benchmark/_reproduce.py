"""Provenance of a benchmark: its recorded settings, and the commands that rerun it.

The rows of ``results.csv`` say which runs there are (models, seeds, budgets); the
``metadata_<dataset>.json`` that :func:`scmodtt.benchmark.run` writes beside them says how they
were run (data, epochs, features, labels).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ._summary import budget_size, run_order
from ._zoo import sized_models

logger = logging.getLogger(__name__)

# The CLI's own defaults, left out of the reproduce command when the metadata has them.
_CLI_DEFAULTS = {
    "n_top_genes": 2000,
    "labels_key": "cell_type",
    "gene_likelihood": "nb",
    "protein_likelihood": "nbmixture",
    "metric_min_cells": 20,
}
_SIZED_ARCHITECTURES = tuple(sized_models())


# ---------------------------------------------------------------------- recorded settings
def read_metadata(out: Path, dataset: str) -> dict:
    """``metadata_<dataset>.json`` of a benchmark output folder; empty when absent or unreadable."""
    path = out / f"metadata_{dataset}.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("Cannot read %s; the report leaves its settings out.", path)
        return {}


def seeds(runs: pd.DataFrame) -> list[int]:
    """Seeds of ``runs``, in increasing order."""
    return sorted(int(s) for s in runs["seed"].unique())


def _epochs_text(metadata: dict) -> str:
    if "max_epochs" not in metadata:
        return "max_epochs not recorded (no metadata)"
    cap = metadata["max_epochs"]
    text = f"max_epochs={cap}" if cap is not None else "max_epochs=each model's default"
    if metadata.get("flow_max_epochs") is not None:
        text += f", flow_max_epochs={metadata['flow_max_epochs']}"
    return text + ", early stopping on validation loss"


def settings_text(runs: pd.DataFrame, metadata: dict) -> str:
    """``3 seeds (0, 1, 2), max_epochs=…``: the settings every table of a dataset came from."""
    used = seeds(runs)
    counted = f"{len(used)} seed" + ("s" if len(used) != 1 else "")
    return f"{counted} ({', '.join(map(str, used))}), {_epochs_text(metadata)}"


def skipped_runs(metadata: dict) -> str:
    """``model at budget, …`` for the runs the benchmark skipped as unreachable (one per pair)."""
    pairs = {
        (run["model"], run["budget"]) for run in metadata.get("runs", []) if run.get("skipped")
    }
    return ", ".join(f"{model} at {budget}" for model, budget in sorted(pairs, key=str))


# ---------------------------------------------------------------------- reruns
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
    models = run_order(runs[["model", "protocol"]].drop_duplicates("model"))["model"].tolist()
    sized = [m for m in models if m.partition(":")[0] in _SIZED_ARCHITECTURES]
    budgets = runs.loc[runs["model"].isin(sized), "budget"].astype(str).unique()
    explicit = sorted((b for b in budgets if b != "default"), key=budget_size)
    used = seeds(runs)
    seeds_flag = len(used) if used == list(range(len(used))) else ",".join(map(str, used))
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


def reproduce_notes(runs: pd.DataFrame, metadata: dict) -> list[str]:
    """What :func:`reproduce_commands` cannot say: seed lists, dropped labels, missing metadata."""
    notes = []
    if metadata.get("dropped_labels") and "min_cells_per_label" not in metadata:
        notes.append(
            "labels were dropped: pass the same `--min-cells-per-label` / `--exclude-labels`"
        )
    if not metadata:
        notes.append(
            f"no metadata_{runs['dataset'].iloc[0]}.json: data and epochs are not recorded"
        )
    return notes

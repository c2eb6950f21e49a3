"""What the benchmark tests share: the quick settings on ``tiny_cite``, readers of a run's output,
and seed 0's split, features and modules (each test module builds them once, in a fixture).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from scmodtt.benchmark import _seed as benchmark_seed
from scmodtt.benchmark._data import load_benchmark_data

DATASET = "tiny_cite"
LABELS_KEY = "cell_type"
MODELS = ("modtt-tt", "flat", "linear", "oracle")
TRAINED = ("modtt-tt", "flat")
#: Every model with a latent space, each scored under both latent protocols.
LATENT_MODELS = ("modtt-tt", "modtt-dense", "flat", "scvi", "totalvi")
LATENT_PROTOCOLS = ("latent_gaussian", "latent_flow")
N_MODULES = {"rna": 8, "prot": 4}
MAX_EPOCHS = 2
#: Epochs of every flow prior (MODTT's own and the latent_flow protocol's): a few, for speed.
FLOW_EPOCHS = 3
N_TOP_GENES = 200
#: Fewest cells per type for the per-type metrics; the distribution metrics need more than k = 5.
METRIC_MIN_CELLS = 6
QUICK = {
    "max_epochs": MAX_EPOCHS,
    "flow_max_epochs": FLOW_EPOCHS,
    "n_top_genes": N_TOP_GENES,
    "n_modules": N_MODULES,
    "metric_min_cells": METRIC_MIN_CELLS,
    "progress": False,
}
COLUMNS = ["dataset", "model", "protocol", "seed", "budget", "n_params", "metric", "value"]
CORRELATIONS = ("cond_r", "interact_r")
PROBABILITIES = ("c2st_auc", "tstr_f1", "trtr_f1")
REQUIRED_METRICS = {*CORRELATIONS, *PROBABILITIES}
#: Metrics that measure the machine rather than the model (differ between identical runs).
TIMING_METRICS = (
    "sample_cells_per_s",
    "train_seconds",
    "median_epoch_seconds",
    "peak_memory_increase_mib",
)
SIZED = {"modtt-tt": "tt", "modtt-dense": "dense", "flat": "flat"}
RUN_LOGGER = "scmodtt.benchmark._run"


def read_results(out: Path) -> pd.DataFrame:
    """``out/results.csv`` typed as the benchmark writes it."""
    return pd.read_csv(out / "results.csv", dtype={"budget": str})


def read_metadata(out: Path, dataset: str = DATASET) -> dict:
    """``out/metadata_<dataset>.json``."""
    return json.loads((out / f"metadata_{dataset}.json").read_text())


def write_h5mu(mdata, path: Path) -> Path:
    """Write ``mdata`` to ``path`` and return the path."""
    mdata.write(path)
    return path


class ListHandler(logging.Handler):
    """Keeps the records it receives (``caplog`` is per test; the budget run is per module)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def load_seed_context():
    """Seed 0's split, features and Ward modules of ``tiny_cite``, as :func:`run` builds them."""
    _, mdata = load_benchmark_data(DATASET, LABELS_KEY)
    return build_context(mdata)


def build_context(mdata):
    return benchmark_seed.SeedContext.build(
        mdata, DATASET, LABELS_KEY, None, 0, N_TOP_GENES, N_MODULES, {"ward"}, None, "default"
    )


def fit_with_modules(context):
    """A copy of the context's fit cells with the Ward modules where MODTT reads them."""
    fit = context.fit.copy()
    benchmark_seed.use_modules(fit, "ward")
    return fit

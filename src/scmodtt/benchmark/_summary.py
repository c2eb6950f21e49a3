"""Benchmark results as report tables: statistics over seeds, and the report's order of runs.

Models, their order and their protocols come from :data:`scmodtt.benchmark.MODELS`, the
protocols' order, descriptions and colours from :data:`scmodtt.benchmark.PROTOCOLS`; the report's
tables and :mod:`scmodtt.pl`'s benchmark figures list runs in the order of :func:`run_order`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._budget import parse_budget
from ._protocols import PROTOCOLS
from ._stats import COUNTERPARTS, RUN_KEYS
from ._zoo import MODELS

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
TRAINING_MEASUREMENTS = ("median_epoch_seconds", "train_seconds", "peak_memory_increase_mib")
SPEED_MEASUREMENTS = (*TRAINING_MEASUREMENTS, "sample_cells_per_s")
SPEED_REFERENCE = "totalvi"
#: Smallest in-process peak-memory increase a ratio is taken against (MiB).
MEMORY_RESOLUTION_MIB = 1.0


# ---------------------------------------------------------------------- statistics over seeds
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
    # Models trained later in one process reuse memory freed by earlier ones, so a reference
    # increase of a fraction of a MiB is below what RSS resolves, not a measurement to divide by.
    unresolved = (per_seed["metric"] == "peak_memory_increase_mib") & (
        per_seed["reference_value"] < MEMORY_RESOLUTION_MIB
    )
    per_seed.loc[unresolved, "ratio"] = np.nan
    return per_seed.groupby(RUN_KEYS + ["metric"], as_index=False, sort=False).agg(
        median=("value", "median"), ratio=("ratio", "median"), n_seeds=("seed", "nunique")
    )


# ---------------------------------------------------------------------- report order
def architecture(model: pd.Series) -> pd.Series:
    """``modtt-tt`` for ``modtt-tt:random``: the model name without its module method."""
    return model.str.replace(r":.*$", "", regex=True)


def run_order(frame: pd.DataFrame, budget_first: bool = False) -> pd.DataFrame:
    """``frame`` (with model and protocol columns, optionally budget) in report order.

    Tables list a model's protocols, each over its budgets; ``budget_first`` lists its budgets,
    each over its protocols (the bar charts group a model's protocols at one budget).
    """
    rank = {name: i for i, name in enumerate(MODEL_ORDER)}
    protocol_rank = {name: i for i, name in enumerate(PROTOCOL_ORDER)}
    budget = frame["budget"] if "budget" in frame else pd.Series("default", index=frame.index)
    keys = pd.DataFrame(
        {
            "architecture": architecture(frame["model"]).map(rank).fillna(len(rank)),
            "model": frame["model"],
            "protocol": frame["protocol"].map(protocol_rank).fillna(len(protocol_rank)),
            "budget": budget.map(budget_size),
        },
        index=frame.index,
    )
    # Architecture rank first, then the name: "modtt-tt" sorts before "modtt-tt:random".
    inner = ["budget", "protocol"] if budget_first else ["protocol", "budget"]
    order = keys.sort_values(["architecture", "model", *inner], kind="stable").index
    return frame.loc[order]


def run_key(model: str, protocol: str) -> tuple:
    """Sort key of one (model, protocol) in report order, for legends."""
    architecture = model.partition(":")[0]
    rank = MODEL_ORDER.index(architecture) if architecture in MODEL_ORDER else len(MODEL_ORDER)
    protocol_rank = PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else 99
    return rank, model, protocol_rank


def ordered_datasets(results: pd.DataFrame) -> list[str]:
    """Datasets in the order they first appear in ``results``."""
    return list(dict.fromkeys(results["dataset"].astype(str)))


def budget_size(budget: str) -> float:
    """Parameter target of a budget string; ``default`` (the models' own sizes) sorts first."""
    if budget == "default":
        return -1.0
    try:
        return float(parse_budget(budget))
    except ValueError:
        return float("inf")

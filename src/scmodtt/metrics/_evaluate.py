"""All metrics of the user guide's metrics page (``docs/user_guide/metrics.md``) in one table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from mudata import MuData
from sklearn.base import ClassifierMixin

from ._c2st import C2STClassifier
from ._cell_types import SkippedCellTypesWarning
from ._classification import tstr_f1
from ._correlation import cond_r, interact_r
from ._fidelity import DISTRIBUTION_METRICS, distribution_fidelity
from ._pairs import PairsLike
from ._reference import ReferenceEmbedding
from ._space import SharedSpace, as_space

#: Columns of the table :func:`evaluate` returns.
EVALUATE_COLUMNS = [
    "metric",
    "value",
    "ideal",
    "n_cell_types",
    "n_skipped",
    "skipped_cell_types",
    "note",
]

#: Value of each metric for a generator indistinguishable from the real cells.
IDEAL_VALUES = {
    "cond_r": 1.0,
    "interact_r": 1.0,
    "tstr_f1": 1.0,
    "trtr_f1": 1.0,
    "mmd2_rbf": 0.0,
    "energy_distance": 0.0,
    "knn_precision": 1.0,
    "knn_recall": 1.0,
    "c2st_auc": 0.5,
}


def _describe_skipped(skipped: pd.DataFrame) -> str:
    return "; ".join(
        f"{row.cell_type} (real {row.n_real}, synthetic {row.n_synthetic})"
        for row in skipped.itertuples()
    )


def _row(
    metric: str,
    value: float,
    note: str,
    n_cell_types: int | float = np.nan,
    skipped: pd.DataFrame | None = None,
) -> dict:
    return {
        "metric": metric,
        "value": float(value),
        "ideal": IDEAL_VALUES[metric],
        "n_cell_types": n_cell_types,
        "n_skipped": 0 if skipped is None else len(skipped),
        "skipped_cell_types": "" if skipped is None else _describe_skipped(skipped),
        "note": note,
    }


def evaluate(
    real_test: MuData | SharedSpace,
    synthetic: MuData | SharedSpace,
    pairs: PairsLike,
    labels_key: str = "cell_type",
    real_train: MuData | SharedSpace | None = None,
    reference: MuData | SharedSpace | ReferenceEmbedding | None = None,
    seed: int = 0,
    min_cells: int = 20,
    n_components: int = 15,
    max_cells: int = 1000,
    classifier: C2STClassifier | ClassifierMixin = "gradient_boosting",
) -> pd.DataFrame:
    """Score synthetic cells against held-out real cells with every metric of the metrics page.

    Runs :func:`cond_r`, :func:`interact_r`, :func:`tstr_f1` (with TRTR when ``real_train`` is
    given) and :func:`distribution_fidelity` (when ``reference`` is given) on the shared space,
    normalizing each set once. See those functions for the exact definitions.

    Metrics that cannot be computed are kept as rows with NaN ``value`` and the reason in
    ``note`` (no ``real_train``: ``trtr_f1``; no ``reference``: the distribution metrics, with a
    warning), so that every call returns the same rows. Cell types skipped for having fewer than
    ``min_cells`` cells are listed per metric and summarized in one
    :class:`SkippedCellTypesWarning`.

    Parameters
    ----------
    real_test
        Held-out real test cells: MuData of raw counts (``rna`` and ``prot`` modalities, counts in
        ``.X``) or :class:`SharedSpace`.
    synthetic
        Synthetic cells with the labels they were generated for.
    pairs
        ``(gene, protein)`` tuples or a DataFrame with columns ``gene``, ``protein``.
    labels_key
        Cell-type column in ``mdata.obs`` (or, failing that, ``mdata['rna'].obs``).
    real_train
        Real training cells, for the TRTR ceiling of TSTR.
    reference
        Real cells in neither the training nor the test set (e.g. the validation split) to fit
        the distribution metrics' PCA on, or a :class:`ReferenceEmbedding` fit on them.
    seed
        Seed of classifiers, PCA and subsampling.
    min_cells
        Fewest cells of a type in both sets for the per-type metrics.
    n_components
        Principal components of the reference embedding.
    max_cells
        Largest number of cells per type and set in the distribution metrics.
    classifier
        Classifier of the two-sample test (:func:`c2st_auc`).

    Returns
    -------
    DataFrame with one row per metric (``cond_r``, ``interact_r``, ``tstr_f1``, ``trtr_f1``,
    ``mmd2_rbf``, ``energy_distance``, ``knn_precision``, ``knn_recall``, ``c2st_auc``) and
    columns ``metric``, ``value``, ``ideal`` (value of a perfect generator), ``n_cell_types``
    (cell types the metric used), ``n_skipped``, ``skipped_cell_types`` (names with their cell
    counts), ``note``.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata, toy_pairs
    >>> table = evaluate(
    ...     toy_cite_mudata(seed=1),
    ...     toy_cite_mudata(seed=2),
    ...     toy_pairs(),
    ...     real_train=toy_cite_mudata(seed=3),
    ...     reference=toy_cite_mudata(seed=0),
    ...     n_components=5,
    ...     classifier="knn",
    ... )
    >>> table["metric"].tolist()[:4]
    ['cond_r', 'interact_r', 'tstr_f1', 'trtr_f1']

    """
    real_test = as_space(real_test, "real_test")
    synthetic = as_space(synthetic, "synthetic")
    if real_train is not None:
        real_train = as_space(real_train, "real_train")

    rows = []
    with warnings.catch_warnings():
        # Skipped types are reported once below, for all metrics together.
        warnings.simplefilter("ignore", SkippedCellTypesWarning)
        coupling = cond_r(real_test, synthetic, pairs, labels_key, min_cells)
        rows.append(
            _row(
                "cond_r",
                coupling.value,
                f"{coupling.n_entries} (cell type, pair) entries; {len(coupling.excluded)} "
                "excluded (constant gene or protein)",
                len(coupling.cell_types),
                coupling.skipped_cell_types,
            )
        )
        interaction = interact_r(real_test, synthetic, pairs, labels_key, min_cells)
        rows.append(
            _row(
                "interact_r",
                interaction.value,
                f"{len(interaction.interaction)} cell-type pairs; {interaction.n_excluded} "
                "excluded (constant differences)",
                len(interaction.cell_types),
                interaction.skipped_cell_types,
            )
        )

        classification = tstr_f1(synthetic, real_test, labels_key, real_train, seed=seed)
        n_test_labels = len(classification.per_label)
        rows.append(
            _row(
                "tstr_f1",
                classification.tstr_f1,
                "logistic regression trained on synthetic, macro F1 on real test",
                n_test_labels,
            )
        )
        rows.append(
            _row(
                "trtr_f1",
                np.nan if classification.trtr_f1 is None else classification.trtr_f1,
                "not computed: pass real_train"
                if classification.trtr_f1 is None
                else "ceiling: logistic regression trained on real train, macro F1 on real test",
                n_test_labels,
            )
        )

        if reference is None:
            warnings.warn(
                "evaluate: no reference set given, so the distribution metrics are NaN. Pass "
                "reference= real cells in neither the training nor the test set (e.g. the "
                "validation split).",
                UserWarning,
                stacklevel=2,
            )
            rows.extend(
                _row(metric, np.nan, "not computed: pass reference")
                for metric in DISTRIBUTION_METRICS
            )
        else:
            fidelity = distribution_fidelity(
                real_test,
                synthetic,
                reference,
                labels_key,
                min_cells=min_cells,
                n_components=n_components,
                max_cells=max_cells,
                classifier=classifier,
                seed=seed,
            )
            if real_train is not None:
                fidelity.embedding.warn_if_overlapping(real_train.obs.index, "real_train")
            note = (
                f"unweighted mean over cell types; reference PCA with "
                f"{fidelity.embedding.n_components} components"
            )
            rows.extend(
                _row(
                    metric,
                    fidelity.summary[metric],
                    note,
                    len(fidelity.per_cell_type),
                    fidelity.skipped_cell_types,
                )
                for metric in DISTRIBUTION_METRICS
            )

    table = pd.DataFrame(rows, columns=EVALUATE_COLUMNS)
    skipped = table.loc[table["n_skipped"] > 0]
    if len(skipped):
        # Metrics sharing one cell-type selection are named together rather than repeated.
        metrics_by_skipped = skipped.groupby("skipped_cell_types", sort=False)["metric"]
        warnings.warn(
            f"evaluate: cell types with < {min_cells} cells in the real test or synthetic set "
            "were skipped: "
            + " | ".join(
                f"{', '.join(metrics)}: {description}"
                for description, metrics in metrics_by_skipped
            )
            + ". See the skipped_cell_types column.",
            SkippedCellTypesWarning,
            stacklevel=2,
        )
    return table

"""Per-cell-type distribution fidelity in a reference PCA space."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData
from sklearn.base import ClassifierMixin

from ._c2st import C2STClassifier, c2st_auc
from ._cell_types import select_cell_types, type_codes
from ._distribution import energy_distance, knn_precision_recall, mmd_rbf
from ._reference import ReferenceEmbedding, fit_reference_embedding
from ._space import SharedSpace, as_space

#: Metrics of :func:`distribution_fidelity`, in the order they are reported.
DISTRIBUTION_METRICS = ("mmd2_rbf", "energy_distance", "knn_precision", "knn_recall", "c2st_auc")


@dataclass(frozen=True)
class DistributionFidelityResult:
    """Result of :func:`distribution_fidelity`.

    Attributes
    ----------
    summary
        Unweighted mean over the used cell types of each metric in :data:`DISTRIBUTION_METRICS`.
    per_cell_type
        One row per used cell type: ``cell_type``, ``n_real``, ``n_synthetic`` (cells in the
        sets), ``n_real_used``, ``n_synthetic_used`` (after subsampling) and the metrics.
    skipped_cell_types
        ``cell_type``, ``n_real``, ``n_synthetic`` of types with fewer than ``min_cells`` cells in
        one of the sets.
    embedding
        The reference embedding the metrics were computed in.

    """

    summary: pd.Series
    per_cell_type: pd.DataFrame
    skipped_cell_types: pd.DataFrame
    embedding: ReferenceEmbedding


def _subsample(n: int, max_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of at most ``max_cells`` of ``n`` cells, drawn without replacement, sorted."""
    if n <= max_cells:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_cells, replace=False))


def check_min_cells(min_cells: int, k: int = 5, n_folds: int = 5, name: str = "min_cells") -> None:
    """Refuse a per-type cell minimum too small for the kNN metrics and the classifier's folds."""
    if min_cells <= k or min_cells < n_folds:
        raise ValueError(
            f"{name} ({min_cells}) must exceed k ({k}) and be >= n_folds ({n_folds}); "
            f"use {max(k + 1, n_folds)} or more."
        )


def distribution_fidelity(
    real: MuData | SharedSpace,
    synthetic: MuData | SharedSpace,
    reference: MuData | SharedSpace | ReferenceEmbedding,
    labels_key: str = "cell_type",
    min_cells: int = 20,
    n_components: int = 15,
    max_cells: int = 1000,
    k: int = 5,
    bandwidth_multiples: Sequence[float] = (0.5, 1.0, 2.0),
    classifier: C2STClassifier | ClassifierMixin = "gradient_boosting",
    n_folds: int = 5,
    seed: int = 0,
) -> DistributionFidelityResult:
    """How well synthetic cells match real cells' distribution, per cell type.

    Definition (``docs/user_guide/metrics.md``). Both sets are embedded by standard scaling + PCA
    fit on a separate reference set of real cells (:func:`fit_reference_embedding`; ``n_components``
    PCs, RNA and protein balanced). For each cell type with at least ``min_cells`` cells in both
    sets, each set is subsampled without replacement to at most ``max_cells`` cells (seeded, so runs
    repeat) and compared by:

    - ``mmd2_rbf``: unbiased MMD² with RBF kernels at ``bandwidth_multiples`` × the median
      distance among that type's real cells (:func:`mmd_rbf`); ≈ 0 is best;
    - ``energy_distance``: unbiased energy statistic (:func:`energy_distance`); ≈ 0 is best;
    - ``knn_precision``, ``knn_recall``: Kynkäänniemi et al. (2019) with ``k`` neighbours
      (:func:`knn_precision_recall`); 1 is best;
    - ``c2st_auc``: cross-validated ROC AUC of a nonlinear real-vs-synthetic classifier
      (:func:`c2st_auc`); 0.5 is best.

    The summary is the unweighted mean over cell types, so that rare types count as much as
    common ones (as in macro F1); ``per_cell_type`` holds the cell counts for any other weighting.
    Cell types below ``min_cells`` are listed in ``skipped_cell_types`` and warned about.

    Parameters
    ----------
    real
        Real test cells: MuData of raw counts or :class:`SharedSpace`.
    synthetic
        Synthetic cells with the labels they were generated for.
    reference
        Real cells in neither the training nor the test set (e.g. the validation split), or a
        :class:`ReferenceEmbedding` already fit on them (to reuse across models). A warning is
        raised if ``real`` shares cells (by name) with it.
    labels_key
        Cell-type column in ``mdata.obs`` (or, failing that, ``mdata['rna'].obs``).
    min_cells
        Fewest cells of a type in each set for the type to be used; must exceed ``k`` and be at
        least ``n_folds``.
    n_components
        Principal components of the reference embedding (ignored for a fitted embedding).
    max_cells
        Largest number of cells per type and set (bounds the quadratic cost).
    k
        Neighbour rank of the precision/recall manifolds.
    bandwidth_multiples
        RBF bandwidths as multiples of the median heuristic.
    classifier
        Classifier of the two-sample test (see :func:`c2st_auc`).
    n_folds
        Cross-validation folds of the two-sample test.
    seed
        Seed of the subsampling, the PCA and the two-sample test.

    Returns
    -------
    :class:`DistributionFidelityResult`.

    Raises
    ------
    ValueError
        Missing labels or features, no cell type with ``min_cells`` cells in both sets, or
        ``min_cells`` too small for ``k`` / ``n_folds``.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata
    >>> result = distribution_fidelity(
    ...     toy_cite_mudata(seed=1),
    ...     toy_cite_mudata(seed=2),
    ...     reference=toy_cite_mudata(seed=0),
    ...     n_components=5,
    ...     classifier="knn",
    ... )
    >>> bool(0.4 < result.summary["c2st_auc"] < 0.6)
    True

    """
    check_min_cells(min_cells, k, n_folds)
    if max_cells < min_cells:
        raise ValueError(f"max_cells ({max_cells}) must be >= min_cells ({min_cells}).")
    real = as_space(real, "real")
    synthetic = as_space(synthetic, "synthetic")
    if isinstance(reference, ReferenceEmbedding):
        embedding = reference
    else:
        embedding = fit_reference_embedding(reference, n_components=n_components, seed=seed)
    embedding.warn_if_overlapping(real.obs.index, "real")

    real_labels = real.labels(labels_key, "real")
    synthetic_labels = synthetic.labels(labels_key, "synthetic")
    selection = select_cell_types(real_labels, synthetic_labels, min_cells, "distribution_fidelity")
    real_keep, real_codes = type_codes(real_labels, selection.used)
    synthetic_keep, synthetic_codes = type_codes(synthetic_labels, selection.used)
    real_scores = embedding.transform(real.subset(real_keep), "real")
    synthetic_scores = embedding.transform(synthetic.subset(synthetic_keep), "synthetic")

    rng = np.random.default_rng(seed)
    rows = []
    # A loop over a handful of cell types: each comparison is itself vectorised.
    for code, cell_type in enumerate(selection.used):
        real_type = real_scores[real_codes == code]
        synthetic_type = synthetic_scores[synthetic_codes == code]
        real_type = real_type[_subsample(len(real_type), max_cells, rng)]
        synthetic_type = synthetic_type[_subsample(len(synthetic_type), max_cells, rng)]
        precision, recall = knn_precision_recall(real_type, synthetic_type, k=k)
        rows.append(
            {
                "cell_type": cell_type,
                "n_real_used": len(real_type),
                "n_synthetic_used": len(synthetic_type),
                "mmd2_rbf": mmd_rbf(real_type, synthetic_type, bandwidth_multiples),
                "energy_distance": energy_distance(real_type, synthetic_type),
                "knn_precision": precision,
                "knn_recall": recall,
                "c2st_auc": c2st_auc(
                    real_type, synthetic_type, classifier=classifier, n_folds=n_folds, seed=seed
                ),
            }
        )
    per_cell_type = selection.counts.merge(pd.DataFrame(rows), on="cell_type")
    return DistributionFidelityResult(
        summary=per_cell_type[list(DISTRIBUTION_METRICS)].mean(),
        per_cell_type=per_cell_type,
        skipped_cell_types=selection.skipped,
        embedding=embedding,
    )

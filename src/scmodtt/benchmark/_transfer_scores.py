"""Scores of the transfer benchmark: label transfer, integration and protein imputation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from ..model._query import UNKNOWN_LABEL

logger = logging.getLogger(__name__)

#: Neighbours of the kNN label-transfer classifier and of the LISI graphs (scib-metrics' 90).
N_NEIGHBORS_LABELS, N_NEIGHBORS_LISI = 15, 90


def _label_f1(reference_latent, reference_labels, query_latent, query_labels) -> float:
    """Macro F1 of a kNN classifier fitted on (labelled) reference cells, on the query cells
    whose label the reference has; NaN when there are none.
    """
    shared = np.isin(query_labels, reference_labels)
    if not shared.any():
        if (query_labels != UNKNOWN_LABEL).any():
            logger.warning("No query label is a reference label: label_f1 not scored (NaN).")
        return np.nan
    classifier = KNeighborsClassifier(n_neighbors=min(N_NEIGHBORS_LABELS, len(reference_labels)))
    classifier.fit(reference_latent, reference_labels)
    predicted = classifier.predict(query_latent[shared])
    truth = query_labels[shared]
    return f1_score(truth, predicted, labels=np.unique(truth), average="macro")


def _integration_scores(latent, labels, batches, labelled=None) -> dict:
    """scib-metrics' iLISI (batch mixing), cLISI and cell-type silhouette (biology).

    iLISI is scored on every cell; cLISI and the silhouette on the ``labelled`` ones (all when
    ``None``), on their own neighbour graph, and are NaN when none is.
    """
    try:
        import scib_metrics
        from scib_metrics.nearest_neighbors import NeighborsResults
    except ImportError as error:  # an optional extra: it brings JAX
        raise ImportError(
            "The transfer benchmark scores integration with scib-metrics: "
            "`pip install -c constraints.txt 'scmodtt[transfer]'`."
        ) from error

    def graph(points):
        n_neighbors = min(N_NEIGHBORS_LISI, len(points) - 1)
        # Exact neighbours with scikit-learn: these benchmarks have thousands of cells.
        distances, indices = (
            NearestNeighbors(n_neighbors=n_neighbors).fit(points).kneighbors(points)
        )
        return NeighborsResults(indices=indices, distances=distances)

    neighbors = graph(latent)
    scores = {"ilisi": float(scib_metrics.ilisi_knn(neighbors, pd.factorize(batches)[0]))}
    if labelled is not None and not labelled.any():
        return {**scores, "clisi": np.nan, "silhouette_label": np.nan}
    if labelled is not None and not labelled.all():
        latent, labels = latent[labelled], np.asarray(labels)[labelled]
        neighbors = graph(latent)
    label_codes = pd.factorize(labels)[0]
    scores["clisi"] = float(scib_metrics.clisi_knn(neighbors, label_codes))
    scores["silhouette_label"] = float(scib_metrics.silhouette_label(latent, label_codes))
    return scores


def _imputation_scores(imputed: np.ndarray, measured) -> dict:
    """Median over ADTs of Pearson and Spearman between log1p imputed and measured counts."""
    measured = measured.toarray() if sp.issparse(measured) else np.asarray(measured)
    imputed, measured = np.log1p(np.asarray(imputed, dtype=float)), np.log1p(measured)
    varying = (measured.std(0) > 0) & (imputed.std(0) > 0)
    pearson = [stats.pearsonr(imputed[:, j], measured[:, j])[0] for j in np.flatnonzero(varying)]
    spearman = stats.spearmanr(imputed[:, varying], measured[:, varying]).statistic
    n = int(varying.sum())
    spearman = np.diag(spearman[:n, n:]) if n > 1 else np.atleast_1d(spearman)
    return {
        "protein_pearson": float(np.median(pearson)),
        "protein_spearman": float(np.median(spearman)),
    }

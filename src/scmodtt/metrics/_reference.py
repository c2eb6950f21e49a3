"""A low-dimensional feature space for distribution metrics, fit on a separate reference set.

Why a separate reference (see the user guide's metrics page, ``docs/user_guide/metrics.md``):
features fit on the cells being compared overfit them.
Measured on PBMC, a PCA-50 fit on training cells has ~1.5× more variance in its last components
on training cells than on test cells, so a nonlinear classifier two-sample test scored even
resampled training cells at 0.79 AUC against real test cells. Fitting scaling and PCA on real
cells that are in neither the training nor the test set (e.g. the validation split) and keeping
few components removes that bias.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ._space import SharedSpace, as_space


@dataclass(frozen=True, eq=False)
class ReferenceEmbedding:
    """Standard scaling + PCA fit on reference cells;
    :meth:`~ReferenceEmbedding.transform` embeds any set.

    Attributes
    ----------
    gene_names, protein_names
        Features, in the order the embedding expects (other sets are aligned by name).
    scaler
        Per-feature standard scaling fit on the reference cells.
    feature_weights
        Per-feature weights applied after scaling (modality balancing, see
        :func:`fit_reference_embedding`).
    pca
        The fitted :class:`~sklearn.decomposition.PCA`.
    reference_obs_names
        Names of the reference cells, to detect overlap with the cells being compared.

    """

    gene_names: pd.Index
    protein_names: pd.Index
    scaler: StandardScaler
    feature_weights: np.ndarray
    pca: PCA
    reference_obs_names: pd.Index

    @property
    def n_components(self) -> int:
        """Number of principal components."""
        return int(self.pca.n_components_)

    def transform(self, data: MuData | SharedSpace, role: str = "data") -> np.ndarray:
        """Cells × components PCA scores of ``data`` (features aligned by name).

        Parameters
        ----------
        data
            MuData of raw counts or :class:`SharedSpace`.
        role
            How error messages name this set.

        """
        space = as_space(data, role).select_features(self.gene_names, self.protein_names, role)
        return self.pca.transform(self.scaler.transform(space.X) * self.feature_weights)

    def warn_if_overlapping(self, obs_names: pd.Index, role: str) -> None:
        """Warn if cells of ``role`` are also reference cells (the features would overfit them)."""
        n_shared = len(self.reference_obs_names.intersection(obs_names))
        if n_shared:
            warnings.warn(
                f"{n_shared} {role} cells are also in the reference set the PCA was fit on. "
                "Fit it on real cells in neither the training nor the test set (e.g. the "
                "validation split), or distribution metrics are biased "
                "(docs/user_guide/metrics.md).",
                UserWarning,
                stacklevel=3,
            )


def fit_reference_embedding(
    reference: MuData | SharedSpace,
    n_components: int = 15,
    balance_modalities: bool = True,
    seed: int = 0,
) -> ReferenceEmbedding:
    """Fit standard scaling + PCA on real reference cells in the shared space.

    Definition: shared-space features (RNA ``log1p`` at 10⁴ counts per cell and ADT per-cell
    CLR, side by side) are standardized to zero mean and unit variance over the reference cells
    (features constant there are centred only). With ``balance_modalities``, each RNA feature is
    then multiplied by ``1/sqrt(n_genes)`` and each protein feature by ``1/sqrt(n_proteins)``, so
    that each modality carries the same total variance: with thousands of genes and tens of
    proteins, an unbalanced PCA would ignore the proteins. A PCA with ``n_components`` (clipped to
    ``min(n_cells - 1, n_features)``) is fit on the result.

    Parameters
    ----------
    reference
        Real cells in neither the training nor the test set (e.g. the validation split): MuData
        of raw counts or :class:`SharedSpace`.
    n_components
        Principal components to keep; few (10–20) so that the space does not overfit.
    balance_modalities
        Give RNA and protein equal total weight (see above).
    seed
        ``random_state`` of the PCA (used by its randomized solver on large inputs).

    Returns
    -------
    :class:`ReferenceEmbedding`.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata
    >>> embedding = fit_reference_embedding(toy_cite_mudata(seed=0), n_components=5)
    >>> embedding.transform(toy_cite_mudata(seed=1)).shape
    (150, 5)

    """
    space = as_space(reference, "reference")
    n_features = len(space.gene_names) + len(space.protein_names)
    n_kept = min(int(n_components), space.n_obs - 1, n_features)
    if n_kept < 1:
        raise ValueError(
            f"reference: cannot fit a PCA on {space.n_obs} cells × {n_features} features; "
            "pass a reference set with more cells."
        )
    if balance_modalities:
        feature_weights = np.concatenate(
            [
                np.full(len(space.gene_names), 1.0 / np.sqrt(max(len(space.gene_names), 1))),
                np.full(len(space.protein_names), 1.0 / np.sqrt(max(len(space.protein_names), 1))),
            ]
        )
    else:
        feature_weights = np.ones(n_features)
    features = space.X
    scaler = StandardScaler().fit(features)
    pca = PCA(n_components=n_kept, random_state=seed).fit(
        scaler.transform(features) * feature_weights
    )
    return ReferenceEmbedding(
        gene_names=space.gene_names,
        protein_names=space.protein_names,
        scaler=scaler,
        feature_weights=feature_weights,
        pca=pca,
        reference_obs_names=pd.Index(space.obs.index),
    )

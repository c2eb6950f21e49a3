"""Feature vectors in correlation geometry: centred over the cells and scaled to unit norm.

For two such vectors ``z_i`` and ``z_j``, ``z_i · z_j`` is the Pearson correlation of the features
and ``||z_i - z_j||² = 2 (1 - r_ij)``: Euclidean methods (Ward linkage, sums of vectors) on these
vectors work on correlation distance.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Columns are scaled a block at a time so that the float64 temporary stays near 64 MiB.
_BLOCK_ELEMENTS = 2**23


def varying_features(values) -> np.ndarray:
    """Boolean mask of the columns that are not constant across the rows (cells)."""
    if sp.issparse(values):
        values = sp.csc_matrix(values)
        highest = values.max(axis=0).toarray().ravel()
        lowest = values.min(axis=0).toarray().ravel()
        return highest > lowest
    return np.ptp(values, axis=0) > 0


def standardized_features(values) -> tuple[np.ndarray, np.ndarray]:
    """Centre each varying column over the cells and scale it to unit Euclidean norm.

    Parameters
    ----------
    values
        Cells × features, dense or scipy-sparse.

    Returns
    -------
    standardized
        ``float32`` cells × varying features; column ``i`` is ``z_i`` above.
    varying
        Boolean mask over the input columns; constant columns (zero variance) are left out, as a
        correlation with them is undefined.

    """
    # Decide what varies in float32, the precision the vectors are kept in, so that no column
    # kept here can round to a constant.
    values = values.astype(np.float32) if sp.issparse(values) else np.asarray(values, np.float32)
    varying = varying_features(values)
    if sp.issparse(values):
        standardized = sp.csc_matrix(values)[:, varying].toarray()
    else:
        standardized = np.array(values[:, varying], dtype=np.float32)
    n_cells, n_features = standardized.shape
    features_per_block = max(1, _BLOCK_ELEMENTS // max(1, n_cells))
    for start in range(0, n_features, features_per_block):
        block = standardized[:, start : start + features_per_block].astype(np.float64)
        block -= block.mean(axis=0)
        block /= np.linalg.norm(block, axis=0)
        standardized[:, start : start + features_per_block] = block
    return standardized, varying

"""The shared normalized space in which MODTT encodes cells and every metric compares them.

RNA: ``log1p`` of counts scaled to :data:`~scmodtt._constants.RNA_TARGET_SUM` per cell.
ADT: per-cell centred log-ratio, ``log1p(x) - mean_j log1p(x_j)`` over the cell's proteins.

The CLR is taken per cell (muon's ``clr(axis=1)``) rather than per protein across cells because a
per-protein CLR depends on which cells are in the set: a synthetic set and a real set would then be
normalized differently, and a model could not normalize a mini-batch on the fly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._constants import RNA_TARGET_SUM


def _dense_float(counts) -> np.ndarray:
    if sp.issparse(counts):
        counts = counts.toarray()
    return np.asarray(counts, dtype=np.float64)


def log1p_normalize(counts, target_sum: float = RNA_TARGET_SUM) -> np.ndarray:
    """``log1p(counts / library * target_sum)`` per cell; cells with no counts stay at 0.

    Parameters
    ----------
    counts
        Cells × features counts, dense or scipy-sparse.
    target_sum
        Counts per cell after scaling.

    Returns
    -------
    Dense ``float64`` array of the same shape.

    """
    counts = _dense_float(counts)
    library = counts.sum(axis=1, keepdims=True)
    scale = np.divide(target_sum, library, out=np.zeros_like(library), where=library > 0)
    return np.log1p(counts * scale)


def log1p_normalize_sparse(counts: sp.csr_matrix, target_sum: float = RNA_TARGET_SUM):
    """:func:`log1p_normalize` of a CSR matrix as CSR: the cost follows its non-zeros.

    ``log1p`` keeps zeros at zero, so only the stored entries change.
    """
    counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    library = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(target_sum, library, out=np.zeros_like(library), where=library > 0)
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    counts.data = np.log1p(counts.data * scale[rows]).astype(np.float32)
    return counts


def clr(counts) -> np.ndarray:
    """Per-cell centred log-ratio ``log1p(x) - mean_j log1p(x_j)``.

    Parameters
    ----------
    counts
        Cells × proteins counts, dense or scipy-sparse.

    Returns
    -------
    Dense ``float64`` array of the same shape; each row sums to zero.

    """
    logged = np.log1p(_dense_float(counts))
    return logged - logged.mean(axis=1, keepdims=True)

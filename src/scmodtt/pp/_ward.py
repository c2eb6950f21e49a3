"""Ward clustering of features on correlation distance, exact and in O(n²/2) float64 memory.

Ward linkage needs Euclidean geometry. On standardized feature vectors (centred, unit norm; see
:mod:`._standardize`) the Euclidean distance is ``sqrt(2 (1 - r))``, so Ward on those vectors is
Ward on correlation distance. The pairwise correlations are a Gram matrix, computed here a block
of features at a time with float32 BLAS straight into scipy's condensed distance vector (8 bytes
per feature pair: 0.9 GB at 15,000 features); fastcluster then runs Ward's nearest-neighbour-chain
algorithm in that vector, in place (O(n²) time, no copy).

A projection onto the top principal axes would need less memory, but it is not a good
approximation here: most of a gene's variance across cells is noise orthogonal to every other
gene, and removing it changes which genes are nearest. Measured on 2,000 highly variable genes of
the REAP-seq PBMC set, 50 Ward clusters on 20–500 principal components agreed with the exact ones
at an adjusted Rand index of only 0.06–0.08.
"""

from __future__ import annotations

from collections.abc import Callable

import fastcluster
import numpy as np
from scipy.cluster.hierarchy import fcluster

# Rows × features of one float32 block of the Gram matrix (64 MiB).
_GRAM_BLOCK_ELEMENTS = 2**24


def condensed_correlation_distances(
    standardized: np.ndarray, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Condensed ``sqrt(2 (1 - r))`` between the columns of a standardized matrix.

    Parameters
    ----------
    standardized
        Cells × features with centred, unit-norm columns.
    progress
        Called with the number of features whose correlations are done, after each block.

    Returns
    -------
    ``float64`` vector of length ``n (n - 1) / 2`` in :func:`scipy.spatial.distance.pdist` order.

    """
    n_features = standardized.shape[1]
    distances = np.empty(n_features * (n_features - 1) // 2, dtype=np.float64)
    rows_per_block = max(1, _GRAM_BLOCK_ELEMENTS // max(1, n_features))
    for start in range(0, n_features - 1, rows_per_block):
        stop = min(n_features - 1, start + rows_per_block)
        # Correlations of features start…stop-1 with every feature from `start` on.
        block = standardized[:, start:stop].T @ standardized[:, start:]
        for row in range(start, stop):
            offset = row * n_features - row * (row + 1) // 2
            distances[offset : offset + n_features - row - 1] = block[
                row - start, row - start + 1 :
            ]
        if progress is not None:
            progress(stop - start)
    np.subtract(1.0, distances, out=distances)
    distances *= 2.0
    # float32 rounding can give r slightly above 1 for identical features.
    np.maximum(distances, 0.0, out=distances)
    np.sqrt(distances, out=distances)
    return distances


def ward_labels(
    standardized: np.ndarray, n_clusters: int, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Cut the Ward tree of the columns of ``standardized`` into at most ``n_clusters`` clusters.

    Parameters
    ----------
    standardized
        Cells × features with centred, unit-norm columns.
    n_clusters
        Number of clusters, at most the number of features.
    progress
        Passed to :func:`condensed_correlation_distances` (``n_features - 1`` in all).

    Returns
    -------
    Cluster label per feature, ``0 … k-1`` with cluster 0 the largest (ties: first feature first).

    """
    n_features = standardized.shape[1]
    if n_clusters >= n_features:
        return np.arange(n_features)
    if n_clusters == 1:
        return np.zeros(n_features, dtype=np.int64)
    distances = condensed_correlation_distances(standardized, progress)
    tree = fastcluster.linkage(distances, method="ward", preserve_input=False)
    del distances  # scratch memory of fastcluster now
    labels = fcluster(tree, t=n_clusters, criterion="maxclust")
    return relabel_by_size(labels)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber labels ``0 … k-1`` by decreasing size, ties by first occurrence."""
    unique, first, inverse, sizes = np.unique(
        labels, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse]

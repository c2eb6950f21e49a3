"""Two-sample distances between real and synthetic cells embedded in a common feature space.

All functions take cells × features arrays (e.g. :meth:`ReferenceEmbedding.transform` output)
and work on full pairwise distance matrices, so inputs should be subsampled to a few thousand
cells (:func:`distribution_fidelity` does this).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist, pdist


def _check_samples(x: np.ndarray, y: np.ndarray, smallest: int = 2) -> tuple[np.ndarray, ...]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"Expected two cells × features arrays with the same features, got {x.shape} and "
            f"{y.shape}."
        )
    if len(x) < smallest or len(y) < smallest:
        raise ValueError(f"Need >= {smallest} cells in each set, got {len(x)} and {len(y)}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("Embedded cells contain NaN or infinite values.")
    return x, y


def median_heuristic(x: np.ndarray) -> float:
    """Median Euclidean distance between distinct rows of ``x`` (pairs at distance 0 ignored).

    Returns 1.0 if all rows are identical. Example: ``median_heuristic(np.eye(3)) == sqrt(2)``.
    """
    distances = pdist(np.asarray(x, dtype=np.float64))
    distances = distances[distances > 0]
    return float(np.median(distances)) if len(distances) else 1.0


def mmd_rbf(
    x: np.ndarray,
    y: np.ndarray,
    bandwidth_multiples: Sequence[float] = (0.5, 1.0, 2.0),
    bandwidth: float | None = None,
) -> float:
    """Unbiased squared maximum mean discrepancy with a mixture of RBF kernels.

    Definition: ``k(u, v) = mean_s exp(-|u - v|² / (2 σ_s²))`` with ``σ_s = m_s · σ`` for each
    multiple ``m_s`` in ``bandwidth_multiples``; ``σ`` is ``bandwidth`` or, by default, the median
    heuristic on ``x`` alone (:func:`median_heuristic`), so that the kernel depends only on the
    real cells and is the same for every generator compared against them. The unbiased
    U-statistic (Gretton et al. 2012, eq. 3)::

        MMD² = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)

    has expectation 0 when both samples come from one distribution, whatever their sizes, so it
    can be slightly negative; it does not grow with 1/n as the biased estimator does, which keeps
    cell types of different sizes comparable.

    Parameters
    ----------
    x
        Real cells × features (sets the bandwidth).
    y
        Synthetic cells × features.
    bandwidth_multiples
        Multiples of the base bandwidth, one RBF kernel each.
    bandwidth
        Base bandwidth ``σ``; ``None`` for the median heuristic on ``x``.

    Returns
    -------
    MMD² (a float; ≈ 0 for matching distributions).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> same = mmd_rbf(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)))
    >>> shifted = mmd_rbf(rng.normal(size=(200, 2)), rng.normal(2.0, size=(200, 2)))
    >>> abs(same) < 0.01 < shifted
    True

    """
    x, y = _check_samples(x, y)
    sigma = median_heuristic(x) if bandwidth is None else float(bandwidth)
    gammas = 1.0 / (2.0 * (np.asarray(bandwidth_multiples, dtype=np.float64) * sigma) ** 2)
    if not (gammas > 0).all() or not np.isfinite(gammas).all():
        raise ValueError("Bandwidths must be positive and finite.")

    def kernel_sum(squared: np.ndarray) -> float:
        # One bandwidth at a time keeps memory at one n × m matrix.
        return sum(float(np.exp(-gamma * squared).sum()) for gamma in gammas) / len(gammas)

    n, m = len(x), len(y)
    # k(u, u) = 1 for every bandwidth, so removing the diagonal subtracts exactly n (or m).
    within_x = (kernel_sum(cdist(x, x, "sqeuclidean")) - n) / (n * (n - 1))
    within_y = (kernel_sum(cdist(y, y, "sqeuclidean")) - m) / (m * (m - 1))
    between = kernel_sum(cdist(x, y, "sqeuclidean")) / (n * m)
    return within_x + within_y - 2.0 * between


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased energy distance (Székely & Rizzo 2013) between two samples.

    Definition::

        E = 2 mean_{i,j} |x_i − y_j| − mean_{i≠j} |x_i − x_j| − mean_{i≠j} |y_i − y_j|

    with Euclidean norms (the squared-distance form, not its square root). The within-sample means
    exclude the zero diagonal (U-statistics), so ``E`` has expectation 0 for samples of one
    distribution and can be slightly negative.

    Parameters
    ----------
    x, y
        Cells × features.

    Returns
    -------
    The energy statistic ``E`` (a float; ≈ 0 for matching distributions).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> same = energy_distance(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)))
    >>> shifted = energy_distance(rng.normal(size=(200, 2)), rng.normal(2.0, size=(200, 2)))
    >>> abs(same) < 0.1 < shifted
    True

    """
    x, y = _check_samples(x, y)
    n, m = len(x), len(y)
    within_x = 2.0 * pdist(x).sum() / (n * (n - 1))
    within_y = 2.0 * pdist(y).sum() / (m * (m - 1))
    between = cdist(x, y).mean()
    return float(2.0 * between - within_x - within_y)


def knn_precision_recall(
    real: np.ndarray, synthetic: np.ndarray, k: int = 5
) -> tuple[float, float]:
    """Improved precision and recall of Kynkäänniemi et al. (2019) with k-NN manifolds.

    Definition: the real manifold is the union of balls around each real cell with radius its
    distance to its ``k``-th nearest other real cell; the synthetic manifold likewise. Precision is
    the fraction of synthetic cells inside the real manifold (are synthetic cells realistic?);
    recall the fraction of real cells inside the synthetic manifold (is the real diversity
    covered?). Boundaries count as inside, so identical sets score 1 and 1.

    Parameters
    ----------
    real, synthetic
        Cells × features; each needs more than ``k`` cells.
    k
        Neighbour rank that sets the ball radii.

    Returns
    -------
    ``(precision, recall)``, each in [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(200, 2))
    >>> knn_precision_recall(real, real)
    (1.0, 1.0)
    >>> precision, recall = knn_precision_recall(real, rng.normal(5.0, size=(200, 2)))
    >>> precision < 0.1 and recall < 0.1
    True

    """
    real, synthetic = _check_samples(real, synthetic, smallest=k + 1)

    def radii(points: np.ndarray) -> np.ndarray:
        # Column 0 of the sorted distances is the cell itself, so column k is its k-th neighbour.
        return np.partition(cdist(points, points), k, axis=1)[:, k]

    between = cdist(synthetic, real)
    precision = (between <= radii(real)[None, :]).any(axis=1).mean()
    recall = (between <= radii(synthetic)[:, None]).any(axis=0).mean()
    return float(precision), float(recall)

"""Vectorised Pearson correlations and per-group means, with undefined cases returned as NaN.

A Pearson correlation is undefined when either vector is constant. Constancy is tested exactly
(max == min) rather than by a variance threshold: a centred constant vector is not exactly zero in
floating point, so a threshold would either miss constant vectors or drop nearly constant ones.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Fewest points for which a Pearson correlation is reported (2 points always give ±1).
MIN_PEARSON_POINTS = 3


def _indicator(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """Groups × cells 0/1 matrix, so that group sums are one sparse product."""
    n = len(codes)
    return sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))


def grouped_mean(x: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Column means of ``x`` within each group; groups × columns. Every group must be non-empty."""
    indicator = _indicator(codes, n_groups)
    counts = np.bincount(codes, minlength=n_groups)
    return (indicator @ x) / counts[:, None]


def _grouped_is_constant(x: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    sorted_x = x[order]
    return np.maximum.reduceat(sorted_x, starts, axis=0) == np.minimum.reduceat(
        sorted_x, starts, axis=0
    )


def grouped_pearson(x: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Pearson correlation of ``x[:, k]`` and ``y[:, k]`` across the cells of each group.

    Parameters
    ----------
    x, y
        Cells × K.
    codes
        Group of each cell, ``0 .. n_groups - 1``; every group must be non-empty.
    n_groups
        Number of groups.

    Returns
    -------
    Groups × K; NaN where ``x[:, k]`` or ``y[:, k]`` is constant within the group.

    """
    if np.bincount(codes, minlength=n_groups).min() == 0:
        raise ValueError("grouped_pearson needs every group to hold at least one cell.")
    indicator = _indicator(codes, n_groups)
    centred_x = x - grouped_mean(x, codes, n_groups)[codes]
    centred_y = y - grouped_mean(y, codes, n_groups)[codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (indicator @ (centred_x * centred_y)) / np.sqrt(
            (indicator @ centred_x**2) * (indicator @ centred_y**2)
        )
    constant = _grouped_is_constant(x, codes, n_groups) | _grouped_is_constant(y, codes, n_groups)
    r[constant] = np.nan
    return np.clip(r, -1.0, 1.0)


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of ``a`` and ``b``; NaN for a row where either is constant."""
    centred_a = a - a.mean(axis=1, keepdims=True)
    centred_b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred_a * centred_b).sum(axis=1) / np.sqrt(
            (centred_a**2).sum(axis=1) * (centred_b**2).sum(axis=1)
        )
    r[(np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two vectors; NaN if fewer than 3 points or either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < MIN_PEARSON_POINTS:
        return float("nan")
    return float(rowwise_pearson(x[None, :], y[None, :])[0])

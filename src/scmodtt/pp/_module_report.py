"""How coherent modules are: mean within-module correlation against size-matched random modules."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from .._constants import DEFAULT_MODULES_KEY, RNA_TARGET_SUM
from ._membership import read_membership, residual_name
from ._normalize import protein_normalized, rna_normalized
from ._random_modules import shuffled_membership
from ._standardize import standardized_features
from ._validation import cell_rows, get_counts, modality_names, resolve_cells


def mean_within_correlation(standardized: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Mean Pearson correlation over the pairs of distinct features of each module.

    With unit-norm centred feature vectors ``z_i``, the squared norm of a module's summed vector
    is ``Σ_ij r_ij = size + Σ_{i≠j} r_ij``; one matrix product gives it for all modules at once.

    Parameters
    ----------
    standardized
        Cells × features with centred, unit-norm columns.
    membership
        Boolean features × modules.

    Returns
    -------
    Mean off-diagonal correlation per module; NaN for modules with fewer than two features.

    """
    summed = standardized @ membership.astype(np.float32)
    total = np.square(summed, dtype=np.float64).sum(axis=0)
    sizes = membership.sum(axis=0).astype(np.float64)
    n_pairs = sizes * (sizes - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, (total - sizes) / n_pairs, np.nan)


def module_report(
    mdata: MuData,
    key: str = DEFAULT_MODULES_KEY,
    layer: str | None = None,
    cells: Sequence | np.ndarray | pd.Index | None = None,
    seed: int = 0,
    rna_mod: str | None = "rna",
    protein_mod: str | None = "prot",
    n_random: int = 10,
) -> pd.DataFrame:
    """Coherence of each module: its mean within-module correlation and a random baseline.

    Correlations are Pearson correlations between features across ``cells``, on the normalized
    values of :func:`normalize` (RNA ``log1p`` of counts normalized to 10⁴ per cell, ADT per-cell
    CLR). The baseline averages the same statistic over ``n_random`` size-matched random
    groupings (the ``"random"`` method of :func:`find_modules`: memberships permuted among the
    non-residual features, so the residual module's baseline is itself). Features constant on
    ``cells`` have no correlation and are left out of the means (they still count in ``size``).

    Parameters
    ----------
    mdata
        MuData with module tables in ``mdata[mod].varm[key]`` and raw counts in ``.X`` or ``layer``.
    key
        ``.varm`` key of the module tables.
    layer
        Layer of both modalities that holds the raw counts; ``None`` reads ``.X``.
    cells
        Cells to correlate over (boolean mask, positions or obs names); ``None``: all cells.
    seed
        Seed of the random groupings.
    rna_mod
        RNA modality; ``None`` skips it.
    protein_mod
        Protein (ADT) modality; ``None`` skips it.
    n_random
        Number of random groupings averaged in the baseline.

    Returns
    -------
    One row per module with columns ``modality``, ``module``, ``size``, ``mean_within_r`` and
    ``random_mean_within_r`` (NaN where fewer than two varying features).

    Examples
    --------
    >>> import scmodtt
    >>> scmodtt.pp.find_modules(mdata)  # doctest: +SKIP
    >>> report = scmodtt.pp.module_report(mdata)  # doctest: +SKIP
    >>> columns = ["mean_within_r", "random_mean_within_r"]
    >>> report.groupby("modality")[columns].mean()  # doctest: +SKIP

    """
    if n_random < 1:
        raise ValueError(f"n_random must be at least 1, got {n_random}.")
    mods = modality_names([(rna_mod, "rna_mod"), (protein_mod, "protein_mod")], mdata)
    selected = resolve_cells(mdata, cells)
    rng = np.random.default_rng(seed)
    reports = []
    for mod in mods:
        adata = mdata.mod[mod]
        membership = read_membership(adata, key, mod)
        counts = get_counts(adata, layer, mod)
        rows = cell_rows(adata, selected, mod)
        if not isinstance(rows, slice):
            counts = counts[rows]
        values = (
            rna_normalized(counts, RNA_TARGET_SUM) if mod == rna_mod else protein_normalized(counts)
        )
        standardized, varying = standardized_features(values)
        del values
        observed = mean_within_correlation(standardized, membership.to_numpy()[varying])
        # All random groupings side by side, so that one matrix product scores them all.
        random_tables = [
            shuffled_membership(membership, residual_name(mod), rng, prefix="random").to_numpy()
            for _ in range(n_random)
        ]
        baseline = mean_within_correlation(
            standardized, np.concatenate(random_tables, axis=1)[varying]
        ).reshape(n_random, -1)
        reports.append(
            pd.DataFrame(
                {
                    "modality": mod,
                    "module": membership.columns,
                    "size": membership.sum(axis=0).to_numpy(),
                    "mean_within_r": observed,
                    "random_mean_within_r": _nanmean_columns(baseline),
                }
            )
        )
    return pd.concat(reports, ignore_index=True)


def _nanmean_columns(values: np.ndarray) -> np.ndarray:
    # A module can have fewer than two varying features in some random draws: those draws are
    # NaN and left out; a column that is NaN in every draw stays NaN, without numpy's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)

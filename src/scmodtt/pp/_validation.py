"""Input checks shared by :mod:`scmodtt.pp`: modalities, count matrices and cell selections.

Every check raises with a message that names the problem and the fix, so that a user who passes a
normalized layer, a wrong modality name or a bad cell mask learns what to change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .._validation import layer_matrix

#: Fewest cells on which a correlation between features means anything.
MIN_CELLS = 3


def get_modality(mdata: MuData, mod: str, argument: str) -> AnnData:
    """Return ``mdata[mod]``, or raise naming the modalities that exist.

    Parameters
    ----------
    mdata
        The user's MuData.
    mod
        Modality name.
    argument
        Name of the function argument that holds ``mod`` (used in the message).

    """
    if not isinstance(mdata, MuData):
        raise TypeError(
            f"Expected a mudata.MuData, got {type(mdata).__name__}. Combine the modalities with "
            "`mudata.MuData({'rna': rna_adata, 'prot': protein_adata})`."
        )
    if mod not in mdata.mod:
        raise ValueError(
            f"Modality {mod!r} not found in the MuData; available modalities: {list(mdata.mod)}. "
            f"Pass the right name as `{argument}=`."
        )
    return mdata.mod[mod]


def get_counts(adata: AnnData, layer: str | None, mod: str):
    """Return the count matrix of ``adata`` (``.X`` or ``.layers[layer]``) after checking it.

    Raises if the layer is missing, or the values are not finite non-negative integers.
    """
    counts = layer_matrix(
        adata,
        layer,
        f"Layer {layer!r} not found in modality {mod!r}; available layers: "
        f"{list(adata.layers)}. Pass `layer=None` to read the counts from `.X`.",
    )
    where = f"modality {mod!r} ({'.X' if layer is None else f'layers[{layer!r}]'})"
    check_counts(counts, where)
    return counts


def check_counts(counts, where: str) -> None:
    """Raise unless ``counts`` holds finite, non-negative, integer-valued numbers."""
    if counts is None:
        raise ValueError(f"{where} is empty; it must hold raw counts.")
    values = counts.data if sp.issparse(counts) else np.asarray(counts)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{where} has dtype {values.dtype}; raw counts must be numbers.")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError(
                f"{where} contains NaN or infinite values. scmodtt.pp needs raw counts: fix or "
                "remove those entries, or pass the layer that holds the raw counts (`layer=`)."
            )
        if (values < 0).any():
            raise ValueError(_not_counts_message(where, "negative values"))
        if not np.array_equal(values, np.round(values)):
            raise ValueError(_not_counts_message(where, "non-integer values"))
    elif values.dtype.kind == "i" and (values < 0).any():
        raise ValueError(_not_counts_message(where, "negative values"))


def _not_counts_message(where: str, problem: str) -> str:
    return (
        f"{where} contains {problem}, so it does not hold raw counts (it looks normalized or "
        "scaled). Pass the layer that holds the raw integer counts with `layer=`, e.g. "
        "`layer='counts'`."
    )


def resolve_cells(mdata: MuData, cells) -> pd.Index | None:
    """Turn a cell selection into the selected ``mdata.obs_names`` (``None``: all cells).

    Parameters
    ----------
    mdata
        The user's MuData.
    cells
        ``None``, a boolean mask over ``mdata.obs_names``, integer positions, or obs names.

    """
    if cells is None:
        return None
    obs_names = mdata.obs_names
    selection = np.asarray(cells)
    if selection.ndim != 1:
        raise ValueError(f"`cells` must be one-dimensional, got shape {selection.shape}.")
    if selection.dtype == bool:
        if selection.size != mdata.n_obs:
            raise ValueError(
                f"The boolean `cells` mask has {selection.size} entries but the MuData has "
                f"{mdata.n_obs} cells; build it over `mdata.obs_names`."
            )
        return obs_names[selection]
    if selection.dtype.kind in "iu":
        if selection.size and (selection.min() < -mdata.n_obs or selection.max() >= mdata.n_obs):
            raise ValueError(
                f"`cells` holds positions outside 0…{mdata.n_obs - 1}, the cells of the MuData."
            )
        return obs_names[selection]
    names = pd.Index(selection.astype(str))
    missing = names.difference(obs_names)
    if len(missing):
        raise ValueError(
            f"{len(missing)} of the names in `cells` are not in `mdata.obs_names`, e.g. "
            f"{list(missing[:5])}."
        )
    return names


def cell_rows(adata: AnnData, selected: pd.Index | None, mod: str) -> np.ndarray | slice:
    """Rows of ``adata`` that belong to the selection; raise if too few for correlations."""
    if selected is None:
        rows: np.ndarray | slice = slice(None)
        n_cells = adata.n_obs
    else:
        rows = np.flatnonzero(adata.obs_names.isin(selected))
        n_cells = rows.size
    if n_cells < MIN_CELLS:
        raise ValueError(
            f"Only {n_cells} of the selected cells are in modality {mod!r}; at least {MIN_CELLS} "
            "are needed to correlate features. Select more cells with `cells=`."
        )
    return rows


def modality_names(mods: Sequence[tuple[str | None, str]], mdata: MuData) -> list[str]:
    """Check each ``(name, argument)`` pair and return the names that are not ``None``."""
    names = []
    for mod, argument in mods:
        if mod is None:
            continue
        get_modality(mdata, mod, argument)
        names.append(mod)
    if not names:
        raise ValueError("Both `rna_mod` and `protein_mod` are None; name at least one modality.")
    return names

"""Checks on user input that turn silent failures into errors naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import layer_matrix


def check_modality(mdata, mod_name: str | None, role: str) -> None:
    """Raise if ``mod_name`` is not a modality of ``mdata``."""
    if mod_name is None:
        raise ValueError(f"`modalities` must name the modality that holds the {role}.")
    if mod_name not in mdata.mod:
        raise KeyError(
            f"Modality {mod_name!r} (given for the {role}) is not in the MuData; it has "
            f"{sorted(mdata.mod)}. Pass e.g. `modalities={{'rna_layer': 'rna', "
            "'protein_layer': 'prot'}}` with the names of your modalities."
        )


def get_matrix(adata_mod, mod_name: str, layer: str | None):
    """The ``layer`` (or ``.X``) of a modality, raising clearly if the layer is missing."""
    return layer_matrix(
        adata_mod,
        layer,
        f"Layer {layer!r} is not in modality {mod_name!r}; its layers are "
        f"{sorted(adata_mod.layers)}. Pass `layer=None` to use `.X`.",
        error=KeyError,
    )


def _values(matrix) -> np.ndarray:
    if sp.issparse(matrix):
        return matrix.data
    if isinstance(matrix, pd.DataFrame):
        return matrix.to_numpy()
    return np.asarray(matrix)


def check_finite(matrix, description: str) -> None:
    """Raise if the matrix holds NaN or infinite values."""
    values = _values(matrix)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        n_bad = int((~np.isfinite(values)).sum())
        raise ValueError(
            f"{description} holds {n_bad} NaN or infinite value(s). Remove or impute them before "
            "`setup_mudata`; MODTT models raw counts."
        )


def check_counts(matrix, description: str, likelihood: str) -> None:
    """Raise if a count likelihood is asked to model values that are not non-negative integers."""
    values = _values(matrix)
    if values.size == 0:
        return
    if values.min() < 0 or (
        np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values))
    ):
        raise ValueError(
            f"{description} is not raw counts (it has negative or non-integer values), but the "
            f"{likelihood!r} likelihood models counts. Register the raw-count layer (e.g. "
            "`rna_layer='counts'`), or use the 'normal' likelihood for normalized data."
        )


def check_non_negative(matrix, description: str) -> None:
    """Raise if the matrix has negative values, which the on-the-fly log1p/CLR cannot normalize."""
    values = _values(matrix)
    if values.size and values.min() < 0:
        raise ValueError(
            f"{description} has negative values. MODTT normalizes each modality itself (RNA: "
            "log1p of library-normalized values, ADT: CLR), which needs non-negative values, "
            "also with the 'normal' likelihood. Register counts (raw or corrected, non-integer "
            "allowed with 'normal'), not scaled or centred data."
        )


def check_labels(mdata, labels_key: str, mod_name: str | None) -> None:
    """Raise if the label column is missing or has missing values."""
    obs = mdata.obs if mod_name is None else mdata[mod_name].obs
    where = "mdata.obs" if mod_name is None else f"mdata[{mod_name!r}].obs"
    if labels_key not in obs:
        raise KeyError(
            f"`labels_key={labels_key!r}` is not a column of {where}. Its columns are "
            f"{list(obs.columns)[:20]}; call `mdata.pull_obs()` if the labels are in a modality."
        )
    n_missing = int(obs[labels_key].isna().sum())
    if n_missing:
        raise ValueError(
            f"{n_missing} cell(s) have no label in {where}[{labels_key!r}]. MODTT learns one prior "
            "per label, so every cell needs one: drop these cells or give them a label such as "
            "'unknown'."
        )

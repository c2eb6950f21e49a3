"""Module membership tables: boolean DataFrames, features × modules, as the model reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import RESIDUAL_MODULE_SUFFIX


def residual_name(mod: str) -> str:
    """Name of the module that holds a modality's features that are in no other module."""
    return f"{mod}_{RESIDUAL_MODULE_SUFFIX}"


def numbered_names(prefix: str, n_modules: int) -> list[str]:
    """``prefix00, prefix01, …`` zero-padded to the same width (at least two digits)."""
    width = max(2, len(str(n_modules - 1)))
    return [f"{prefix}{index:0{width}d}" for index in range(n_modules)]


def membership_from_labels(var_names: pd.Index, labels: np.ndarray, mod: str) -> pd.DataFrame:
    """One-hot table of hard cluster labels; label ``-1`` sends a feature to the residual module.

    Modules are named ``{mod}_m00, {mod}_m01, …`` after their label.
    """
    n_modules = int(labels.max()) + 1 if (labels >= 0).any() else 0
    one_hot = labels[:, None] == np.arange(n_modules)[None, :]
    membership = pd.DataFrame(
        one_hot, index=var_names, columns=numbered_names(f"{mod}_m", n_modules)
    )
    return with_residual(membership, mod)


def with_residual(membership: pd.DataFrame, mod: str) -> pd.DataFrame:
    """Append the residual module when some feature is in no module (nothing is dropped)."""
    unassigned = ~membership.to_numpy().any(axis=1)
    if unassigned.any():
        membership = membership.assign(**{residual_name(mod): unassigned})
    return membership


def read_membership(adata: AnnData, key: str, mod: str) -> pd.DataFrame:
    """Read and check ``adata.varm[key]``: a boolean DataFrame indexed like ``var_names``."""
    if key not in adata.varm:
        raise ValueError(
            f"Modality {mod!r} has no module table `varm[{key!r}]` (varm keys: "
            f"{list(adata.varm)}). Run `scmodtt.pp.find_modules(mdata, key_added={key!r})` first."
        )
    membership = adata.varm[key]
    if not isinstance(membership, pd.DataFrame):
        raise TypeError(
            f"`mdata[{mod!r}].varm[{key!r}]` is a {type(membership).__name__}; module tables are "
            "boolean DataFrames (features × modules) as written by `scmodtt.pp.find_modules`."
        )
    if not membership.index.equals(adata.var_names):
        raise ValueError(f"The index of `mdata[{mod!r}].varm[{key!r}]` is not `var_names`.")
    try:
        return membership.astype(bool)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`mdata[{mod!r}].varm[{key!r}]` must hold booleans.") from error

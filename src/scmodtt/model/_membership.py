"""Module membership.

From the ``.varm`` tables of each modality to the coordinate form the layers use.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scvi import settings

from ..pp._membership import residual_name, with_residual


@dataclass(frozen=True)
class ModuleLayout:
    """Membership of the concatenated ``[genes, proteins]`` features in ``n_modules`` modules."""

    feature_index: np.ndarray
    module_index: np.ndarray
    module_names: list[str]
    module_modalities: list[str]

    @property
    def n_modules(self) -> int:
        return len(self.module_names)


def read_membership(adata_mod, mod_name: str, modules_key: str) -> pd.DataFrame:
    """Return ``adata_mod.varm[modules_key]`` as a boolean DataFrame indexed by var names.

    Raises a clear error if it is missing, has the wrong shape, or has a module with no features.
    """
    if modules_key not in adata_mod.varm:
        raise KeyError(
            f"Modality {mod_name!r} has no module membership `.varm[{modules_key!r}]`. Build "
            f"modules first, e.g. `scmodtt.pp.find_modules(mdata, key_added={modules_key!r})`, or "
            "use `architecture='flat'`, which needs no modules."
        )
    table = adata_mod.varm[modules_key]
    if isinstance(table, pd.DataFrame):
        columns = [str(column) for column in table.columns]
        values = table.to_numpy()
    else:
        values = np.asarray(table)
        columns = [f"{mod_name}_m{i:02d}" for i in range(values.shape[1])]
    if values.ndim != 2 or values.shape[0] != adata_mod.n_vars:
        raise ValueError(
            f"`{mod_name}.varm[{modules_key!r}]` must be a boolean table of n_vars × n_modules, "
            f"got shape {values.shape}."
        )
    if not (values.dtype == bool or np.isin(values, (0, 1)).all()):
        raise ValueError(
            f"`{mod_name}.varm[{modules_key!r}]` must hold booleans (feature in module or not)."
        )
    membership = pd.DataFrame(
        values.astype(bool), index=adata_mod.var_names.copy(), columns=columns
    )
    empty = membership.columns[~membership.any(axis=0).to_numpy()]
    if len(empty):
        raise ValueError(
            f"{len(empty)} module(s) of `{mod_name}.varm[{modules_key!r}]` contain no features: "
            f"{list(empty)[:10]}. Drop these columns or rebuild the modules with "
            "`scmodtt.pp.find_modules`."
        )
    return membership


def with_residual_module(membership: pd.DataFrame, mod_name: str) -> pd.DataFrame:
    """Add one residual module holding the features that are in no module (warning how many)."""
    unassigned = int((~membership.to_numpy().any(axis=1)).sum())
    if unassigned:
        warnings.warn(
            f"{unassigned} of {len(membership)} features of {mod_name!r} belong to no module; "
            f"they are modelled together in a residual module {residual_name(mod_name)!r}.",
            UserWarning,
            stacklevel=settings.warnings_stacklevel,
        )
    return with_residual(membership, mod_name)


def layout_from_memberships(
    gene_membership: pd.DataFrame, protein_membership: pd.DataFrame
) -> ModuleLayout:
    """Coordinate form over ``[genes, proteins]``.

    Protein modules are numbered after gene modules.
    """
    gene_features, gene_modules = np.nonzero(gene_membership.to_numpy())
    protein_features, protein_modules = np.nonzero(protein_membership.to_numpy())
    n_genes, n_gene_modules = gene_membership.shape
    return ModuleLayout(
        feature_index=np.concatenate([gene_features, protein_features + n_genes]),
        module_index=np.concatenate([gene_modules, protein_modules + n_gene_modules]),
        module_names=[*gene_membership.columns, *protein_membership.columns],
        module_modalities=["rna"] * n_gene_modules + ["protein"] * protein_membership.shape[1],
    )

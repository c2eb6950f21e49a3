"""The shared normalized space in which every metric compares real and synthetic cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData

from .._normalization import clr, log1p_normalize
from .._validation import layer_matrix


@dataclass(frozen=True, eq=False)
class SharedSpace:
    """Cells in the metrics' shared space: RNA ``log1p`` at 10⁴ counts per cell, ADT CLR.

    Build it with :func:`shared_space`. Every metric in :mod:`scmodtt.metrics` accepts a
    :class:`SharedSpace` wherever it accepts a MuData, so that a set evaluated by several metrics
    (or against several models) is normalized once.

    Attributes
    ----------
    rna
        Cells × genes, dense ``float64``: ``log1p(counts / library * 1e4)``.
    protein
        Cells × proteins, dense ``float64``: per-cell ``log1p(x) - mean_j log1p(x_j)``.
    gene_names
        Names of the columns of :attr:`rna`.
    protein_names
        Names of the columns of :attr:`protein`.
    obs
        Cell annotations, indexed by cell name. Columns of ``mdata.obs`` take precedence over
        columns of the same name in ``mdata[rna_mod].obs``.

    """

    rna: np.ndarray
    protein: np.ndarray
    gene_names: pd.Index
    protein_names: pd.Index
    obs: pd.DataFrame

    def __post_init__(self) -> None:
        n_obs = len(self.obs)
        if self.rna.shape != (n_obs, len(self.gene_names)):
            raise ValueError(
                f"rna has shape {self.rna.shape}, expected ({n_obs}, {len(self.gene_names)})."
            )
        if self.protein.shape != (n_obs, len(self.protein_names)):
            raise ValueError(
                f"protein has shape {self.protein.shape}, "
                f"expected ({n_obs}, {len(self.protein_names)})."
            )
        # Generators that output normalized values (e.g. a linear baseline) skip the count checks.
        for name, values in (("rna", self.rna), ("protein", self.protein)):
            if not np.isfinite(values).all():
                raise ValueError(
                    f"SharedSpace.{name} contains NaN or infinite values; drop or repair the "
                    "affected cells before computing metrics."
                )

    def __repr__(self) -> str:
        return (
            f"SharedSpace with {self.n_obs} cells × "
            f"({len(self.gene_names)} genes + {len(self.protein_names)} proteins)"
        )

    @property
    def n_obs(self) -> int:
        """Number of cells."""
        return len(self.obs)

    @property
    def X(self) -> np.ndarray:
        """Genes and proteins side by side, cells × (genes + proteins)."""
        return np.hstack([self.rna, self.protein])

    def labels(self, labels_key: str, role: str = "data") -> np.ndarray:
        """Cell labels as strings, checked to exist and to have no missing values.

        Parameters
        ----------
        labels_key
            Column of :attr:`obs`.
        role
            How error messages name this set (e.g. ``"synthetic"``).

        Returns
        -------
        Array of ``str``, one per cell. Labels are compared as strings so that, e.g., integer
        cluster ids in one set match their string form in another.

        """
        return checked_labels(self.obs, labels_key, role)

    def subset(self, cells: np.ndarray) -> SharedSpace:
        """The cells selected by a boolean mask or integer positions."""
        return SharedSpace(
            rna=self.rna[cells],
            protein=self.protein[cells],
            gene_names=self.gene_names,
            protein_names=self.protein_names,
            obs=self.obs.iloc[cells],
        )

    def select_features(
        self, gene_names: pd.Index, protein_names: pd.Index, role: str = "data"
    ) -> SharedSpace:
        """The same cells with their features in the given order (to align two sets).

        Raises
        ------
        ValueError
            If a requested gene or protein is missing.

        """
        gene_idx = _positions(self.gene_names, gene_names, f"{role}: genes")
        protein_idx = _positions(self.protein_names, protein_names, f"{role}: proteins")
        return SharedSpace(
            rna=self.rna[:, gene_idx],
            protein=self.protein[:, protein_idx],
            gene_names=pd.Index(gene_names),
            protein_names=pd.Index(protein_names),
            obs=self.obs,
        )


def checked_labels(
    obs: pd.DataFrame,
    labels_key: str,
    role: str,
    absent: str = "is in neither mdata.obs nor the RNA modality's .obs",
) -> np.ndarray:
    """``obs[labels_key]`` as strings, checked to exist and to have no missing values.

    ``absent`` says, in the error message, where the column was looked for.
    """
    if labels_key not in obs.columns:
        raise ValueError(
            f"{role}: labels_key {labels_key!r} {absent} (columns: "
            f"{sorted(map(str, obs.columns))}). "
            "Pass the column that holds the cell types, e.g. labels_key='cell_type'."
        )
    labels = obs[labels_key]
    n_missing = int(labels.isna().sum())
    if n_missing:
        raise ValueError(
            f"{role}: {n_missing} of {len(labels)} cells have no {labels_key!r} label (NaN). "
            f"Drop them first, e.g. mdata = mdata[mdata.obs[{labels_key!r}].notna()].copy()."
        )
    return labels.astype(str).to_numpy()


def _positions(available: pd.Index, requested, what: str) -> np.ndarray:
    positions = available.get_indexer(pd.Index(requested))
    missing = pd.Index(requested)[positions < 0]
    if len(missing):
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise ValueError(
            f"{what}: {len(missing)} feature(s) missing ({shown}). Real, synthetic and reference "
            "sets must measure the same features; subset them to a common var_names first."
        )
    return positions


def _check_counts(counts, what: str) -> None:
    values = counts.data if sp.issparse(counts) else np.asarray(counts)
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{what} has dtype {values.dtype}; raw counts must be numeric.")
    if not np.isfinite(values).all():
        raise ValueError(
            f"{what} contains NaN or infinite values; the metrics need raw counts. "
            "Replace them (e.g. with 0) or drop the affected cells."
        )
    if (values < 0).any():
        raise ValueError(
            f"{what} contains negative values; the metrics need raw counts, not normalized "
            "values. Pass the counts (layer=... if they are in a layer)."
        )


def _modality_counts(mdata: MuData, mod: str, layer: str | None):
    if mod not in mdata.mod:
        raise ValueError(
            f"Modality {mod!r} not in the MuData (modalities: {list(mdata.mod)}). "
            "Pass rna_mod=/protein_mod= to shared_space."
        )
    adata = mdata.mod[mod]
    if adata.var_names.has_duplicates:
        raise ValueError(
            f"mdata[{mod!r}].var_names are not unique; call mdata[{mod!r}].var_names_make_unique()."
        )
    counts = layer_matrix(
        adata,
        layer,
        f"Layer {layer!r} not in mdata[{mod!r}].layers (layers: {list(adata.layers)}).",
    )
    if counts is None:
        raise ValueError(f"mdata[{mod!r}].X is empty; pass the layer that holds the raw counts.")
    _check_counts(counts, f"mdata[{mod!r}] {'X' if layer is None else f'layer {layer!r}'}")
    return adata, counts


def shared_space(
    mdata: MuData, rna_mod: str = "rna", protein_mod: str = "prot", layer: str | None = None
) -> SharedSpace:
    """Normalize a MuData of raw CITE-seq counts into the shared space of the metrics.

    RNA: ``log1p(counts / library * 1e4)`` per cell
    (:func:`scmodtt._normalization.log1p_normalize`).
    ADT: per-cell centred log-ratio ``log1p(x) - mean_j log1p(x_j)``
    (:func:`scmodtt._normalization.clr`). Both are computed from raw counts, so that real and
    synthetic cells are normalized identically, cell by cell, independent of the other cells.

    Parameters
    ----------
    mdata
        Raw counts of paired RNA and protein for the same cells.
    rna_mod
        Name of the RNA modality.
    protein_mod
        Name of the protein (ADT) modality.
    layer
        Layer holding the raw counts in both modalities; ``None`` uses ``.X``.

    Returns
    -------
    :class:`SharedSpace` with dense ``float64`` matrices, cells in the order of the RNA modality.
    Annotations: ``mdata.obs`` columns, falling back to ``mdata[rna_mod].obs`` for columns that
    are only there.

    Raises
    ------
    ValueError
        For a missing modality or layer, non-unique feature names, NaN/infinite/negative counts,
        or RNA and protein modalities that do not hold the same cells.

    Examples
    --------
    >>> import anndata as ad, mudata as md, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rna = ad.AnnData(rng.poisson(5.0, (4, 3)).astype(float))
    >>> rna.var_names = ["CD3E", "CD4", "MS4A1"]
    >>> prot = ad.AnnData(rng.poisson(20.0, (4, 2)).astype(float))
    >>> prot.var_names = ["CD3", "CD4_protein"]
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> space = shared_space(mdata)
    >>> space.rna.shape, space.protein.shape
    ((4, 3), (4, 2))
    >>> bool(np.allclose(space.protein.sum(axis=1), 0.0))
    True

    """
    if not isinstance(mdata, MuData):
        raise TypeError(f"Expected a MuData, got {type(mdata).__name__}.")
    rna, rna_counts = _modality_counts(mdata, rna_mod, layer)
    protein, protein_counts = _modality_counts(mdata, protein_mod, layer)

    # CITE-seq pairs RNA and protein per cell: a cell missing from one modality cannot be compared.
    if not protein.obs_names.equals(rna.obs_names):
        order = protein.obs_names.get_indexer(rna.obs_names)
        if len(protein.obs_names) != len(rna.obs_names) or (order < 0).any():
            raise ValueError(
                f"mdata[{rna_mod!r}] and mdata[{protein_mod!r}] do not hold the same cells; "
                "subset both modalities to the shared cells (e.g. muon.pp.intersect_obs(mdata))."
            )
        protein_counts = protein_counts[order]

    obs = rna.obs.copy()
    global_obs = mdata.obs.reindex(rna.obs_names)
    for column in global_obs.columns:
        obs[column] = global_obs[column]

    return SharedSpace(
        rna=log1p_normalize(rna_counts),
        protein=clr(protein_counts),
        gene_names=pd.Index(rna.var_names),
        protein_names=pd.Index(protein.var_names),
        obs=obs,
    )


def as_space(data: MuData | SharedSpace, role: str) -> SharedSpace:
    """A :class:`SharedSpace` from a MuData (default modality names, ``.X``) or as given."""
    if isinstance(data, SharedSpace):
        return data
    if isinstance(data, MuData):
        return shared_space(data)
    raise TypeError(
        f"{role}: expected a MuData of raw counts or a SharedSpace, got {type(data).__name__}. "
        "For an AnnData pair, build mudata.MuData({'rna': rna, 'prot': prot}) first."
    )

"""Highly variable genes of the RNA modality (scanpy's ``seurat_v3`` flavor, on counts)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from mudata import MuData

from ._validation import get_counts, get_modality

#: Columns that scanpy's seurat_v3 flavor writes to ``.var``.
_HVG_COLUMNS = ("highly_variable", "highly_variable_rank", "means", "variances", "variances_norm")


def highly_variable_genes(
    mdata: MuData,
    n_top_genes: int = 2000,
    rna_mod: str = "rna",
    layer: str | None = None,
    batch_key: str | None = None,
    subset: bool = False,
    **kwargs,
) -> MuData | None:
    """Annotate highly variable genes with :func:`scanpy.pp.highly_variable_genes` (``seurat_v3``).

    The ``seurat_v3`` flavor models the mean–variance trend of raw counts, so the counts are
    used as they are (``.X`` or ``layer``), not normalized values.

    Unlike scanpy, ``subset=True`` never subsets the user's object in place: it returns a new
    MuData whose RNA modality holds the highly variable genes only (the other modalities are
    copied unchanged), and the input keeps all its genes. In both cases the annotation columns
    are written to ``mdata[rna_mod].var`` of the input.

    Parameters
    ----------
    mdata
        MuData with raw integer counts in ``.X`` of the RNA modality, or in ``layer``.
    n_top_genes
        Number of highly variable genes.
    rna_mod
        RNA modality.
    layer
        Layer that holds the raw counts; ``None`` reads ``.X``.
    batch_key
        Column of ``mdata[rna_mod].obs`` or of ``mdata.obs`` with the batch of each cell; genes
        are ranked within each batch and the ranks combined (scanpy's ``batch_key``).
    subset
        Return a new MuData restricted to the highly variable genes (see above).
    **kwargs
        Passed to :func:`scanpy.pp.highly_variable_genes` (e.g. ``span``).

    Returns
    -------
    ``None`` when ``subset=False``; else the new, subset MuData. Adds to
    ``mdata[rna_mod].var``: ``highly_variable``, ``highly_variable_rank``, ``means``,
    ``variances``, ``variances_norm`` (and ``highly_variable_nbatches`` with ``batch_key``).

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.reapseq_pbmc()  # doctest: +SKIP
    >>> hvg = scmodtt.pp.highly_variable_genes(mdata, 2000, subset=True)  # doctest: +SKIP
    >>> hvg["rna"].n_vars  # doctest: +SKIP
    2000

    """
    rna = get_modality(mdata, rna_mod, "rna_mod")
    counts = get_counts(rna, layer, rna_mod)
    if n_top_genes > rna.n_vars:
        raise ValueError(
            f"n_top_genes={n_top_genes} is more than the {rna.n_vars} genes of modality "
            f"{rna_mod!r}; request at most {rna.n_vars}."
        )
    for reserved in ("flavor", "inplace", "layer", "subset"):
        if reserved in kwargs:
            raise TypeError(f"`{reserved}` is set by scmodtt.pp.highly_variable_genes itself.")
    obs = pd.DataFrame(index=rna.obs_names)
    if batch_key is not None:
        obs[batch_key] = _batches(mdata, rna, batch_key, rna_mod)
    # A light AnnData that shares the counts: scanpy neither copies them nor writes to the user's
    # object, and a batch column that lives only in mdata.obs needs no copy into rna.obs.
    view = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=rna.var_names))
    result = sc.pp.highly_variable_genes(
        view,
        n_top_genes=n_top_genes,
        flavor="seurat_v3",
        batch_key=batch_key,
        inplace=False,
        **kwargs,
    )
    columns = list(_HVG_COLUMNS) + (["highly_variable_nbatches"] if batch_key is not None else [])
    for column in columns:
        rna.var[column] = result[column].to_numpy()
    rna.uns["hvg"] = {"flavor": "seurat_v3"}
    if not subset:
        return None
    # mudata's varmap: for each global var, its 1-based position in the RNA var (0: another
    # modality's feature). Slicing the MuData keeps obs, obsm, uns and the other modalities.
    rna_position = np.asarray(mdata.varmap[rna_mod]).ravel().astype(np.int64)
    is_hvg = rna.var["highly_variable"].to_numpy()
    keep = (rna_position == 0) | is_hvg[np.maximum(rna_position - 1, 0)]
    return mdata[:, keep].copy()


def _batches(mdata: MuData, rna: ad.AnnData, batch_key: str, rna_mod: str) -> pd.Series:
    if batch_key in rna.obs:
        return rna.obs[batch_key].to_numpy()
    if batch_key in mdata.obs:
        return mdata.obs[batch_key].reindex(rna.obs_names).to_numpy()
    raise ValueError(
        f"batch_key {batch_key!r} is neither a column of `mdata[{rna_mod!r}].obs` nor of "
        f"`mdata.obs`; columns there: {list(rna.obs.columns)} and {list(mdata.obs.columns)}."
    )

"""Write the shared normalized space (RNA log1p-normalized, ADT per-cell CLR) into layers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mudata import MuData

from .._constants import PROTEIN_NORMALIZED_LAYER, RNA_NORMALIZED_LAYER, RNA_TARGET_SUM
from .._normalization import clr, log1p_normalize
from ._validation import get_counts, modality_names

# Sparse counts are normalized a block of cells at a time with the shared dense function: the
# numbers are the shared space's bit for bit, and a block's dense copy stays near 64 MiB.
_BLOCK_ELEMENTS = 2**23


def rna_normalized(counts, target_sum: float = RNA_TARGET_SUM):
    """RNA ``log1p`` of library-normalized counts; sparse input gives a CSR matrix.

    The values are those of :func:`scmodtt._normalization.log1p_normalize`; ``log1p(0) = 0``
    keeps the zeros of sparse input, so they need not be stored.
    """
    if not sp.issparse(counts):
        return log1p_normalize(counts, target_sum=target_sum)
    counts = sp.csr_matrix(counts)
    n_cells, n_genes = counts.shape
    cells_per_block = max(1, _BLOCK_ELEMENTS // max(1, n_genes))
    blocks = [
        sp.csr_matrix(log1p_normalize(counts[start : start + cells_per_block], target_sum))
        for start in range(0, n_cells, cells_per_block)
    ]
    if not blocks:
        return sp.csr_matrix(counts.shape, dtype=np.float64)
    return sp.vstack(blocks, format="csr")


def protein_normalized(counts) -> np.ndarray:
    """ADT per-cell CLR (:func:`scmodtt._normalization.clr`); dense, as the CLR has no zeros."""
    return clr(counts)


def normalize(
    mdata: MuData,
    rna_mod: str | None = "rna",
    protein_mod: str | None = "prot",
    layer: str | None = None,
    rna_key_added: str = RNA_NORMALIZED_LAYER,
    protein_key_added: str = PROTEIN_NORMALIZED_LAYER,
    target_sum: float = RNA_TARGET_SUM,
) -> None:
    """Add the normalized layers in which MODTT encodes cells and the metrics compare them.

    RNA: ``log1p`` of counts scaled to ``target_sum`` per cell (scanpy's
    ``normalize_total(target_sum=1e4)`` followed by ``log1p``); sparse counts give a sparse layer.
    ADT: per-cell centred log-ratio ``log1p(x) - mean_j log1p(x_j)`` (muon's
    ``prot.pp.clr(axis=1, flavor="stoeckius")``; muon's default ``"seurat"`` flavor differs), dense.
    The counts in ``.X`` and in the other layers are not changed.

    Parameters
    ----------
    mdata
        MuData with raw integer counts in ``.X`` of each modality, or in ``layer``.
    rna_mod
        RNA modality; ``None`` skips RNA.
    protein_mod
        Protein (ADT) modality; ``None`` skips proteins.
    layer
        Layer of both modalities that holds the raw counts; ``None`` reads ``.X``.
    rna_key_added
        RNA layer to write.
    protein_key_added
        Protein layer to write.
    target_sum
        RNA counts per cell after library normalization.

    Returns
    -------
    Nothing; sets ``mdata[rna_mod].layers[rna_key_added]`` and
    ``mdata[protein_mod].layers[protein_key_added]`` (``float64``).

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.reapseq_pbmc()  # doctest: +SKIP
    >>> scmodtt.pp.normalize(mdata)  # doctest: +SKIP
    >>> mdata["rna"].layers["log1p_norm"]  # doctest: +SKIP

    """
    mods = modality_names([(rna_mod, "rna_mod"), (protein_mod, "protein_mod")], mdata)
    targets = {rna_mod: rna_key_added, protein_mod: protein_key_added}
    normalized = {}
    # Compute everything before writing, so that a bad second modality leaves the object as it was.
    for mod in mods:
        key_added = targets[mod]
        if layer is not None and key_added == layer:
            raise ValueError(
                f"The output layer {key_added!r} is the counts layer of modality {mod!r}; "
                "writing it would destroy the counts. Choose another key."
            )
        counts = get_counts(mdata.mod[mod], layer, mod)
        normalized[mod] = (
            rna_normalized(counts, target_sum) if mod == rna_mod else protein_normalized(counts)
        )
    for mod, values in normalized.items():
        mdata.mod[mod].layers[targets[mod]] = values

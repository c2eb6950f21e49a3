"""Which ADTs each batch measured: the mask behind RNA-only cells and partial panels."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

logger = logging.getLogger(__name__)


def detected_by_batch(protein_counts, batch_codes, n_batch: int) -> tuple[np.ndarray, int]:
    """Per-batch detection of each ADT, ``(n_batch, n_proteins)``, and the cells without ADTs.

    totalVI's protein batch mask, from the counts alone: an ADT that no cell of a batch detected
    carries no information there (it was not in that batch's panel, or the batch has no protein
    data), so the model leaves it out of that batch's likelihood. Both results add up over
    blocks of cells (``|`` and ``+``), so data on disk can be streamed.
    """
    counts = protein_counts.to_numpy() if hasattr(protein_counts, "to_numpy") else protein_counts
    counts = sparse.csr_matrix(counts)
    codes = np.asarray(batch_codes).ravel().astype(np.int64)
    # Per-batch detection counts in one sparse product: batches × cells @ cells × ADTs.
    membership = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_batch, len(codes))
    )
    detected = np.asarray((membership @ (counts > 0).astype(np.float32)).todense()) > 0
    cells_without = int((np.asarray(counts.sum(axis=1)).ravel() == 0).sum())
    return detected, cells_without


def log_unmeasured(
    detected: np.ndarray, cells_without: int, batch_codes, batch_names, mod_name: str
) -> None:
    """Log the RNA-only cells and the ADTs each batch did not measure."""
    if cells_without:
        logger.info(
            "%d cells have no %r counts: treated as RNA-only (their ADTs are imputed).",
            cells_without,
            mod_name,
        )
    codes = np.asarray(batch_codes).ravel().astype(np.int64)
    has_cells = np.bincount(codes, minlength=detected.shape[0]) > 0
    for code in np.flatnonzero(has_cells & ~detected.all(axis=1)):
        n_missing = int((~detected[code]).sum())
        logger.info(
            "Batch %r: %d of %d ADTs have no counts and are treated as unmeasured.",
            str(batch_names[code]),
            n_missing,
            detected.shape[1],
        )

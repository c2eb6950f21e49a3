"""What MODTT computes from every cell before training: count checks and data statistics.

Data in memory go through whole-matrix operations; backed (on-disk) data are streamed in blocks
of rows, and every statistic is a sum over cells, so memory follows the block, not the cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _normalization
from ..module._likelihoods import (
    COUNT_LIKELIHOODS,
    initial_output_bias,
    output_bias_from_mean,
    output_bias_terms,
)
from ..module._priors import LIBRARY_STAT_KEYS, library_statistics, per_label_moments
from ._modalities import detected_by_batch, log_unmeasured
from ._ondisk import is_backed, read_rows, row_blocks
from ._validation import check_counts, check_non_negative

_NORMALIZE = {"rna": _normalization.log1p_normalize, "protein": _normalization.clr}


@dataclass
class DataStatistics:
    """Inputs of :class:`~scmodtt.module.MODTTVAE` that summarise the registered cells.

    Attributes
    ----------
    initial_output_bias
        ``{"rna": (n_genes,), "protein": (n_proteins,)}`` decoder starting points.
    library_stats
        ``(n_labels, 3, 2)`` per-label mean and standard deviation of the library statistics.
    protein_observed
        ``(n_batch, n_proteins)`` booleans: the ADTs each batch measured.
    n_rna_only_cells
        Cells without any ADT count (RNA-only cells, whose ADTs are imputed).

    """

    initial_output_bias: dict[str, np.ndarray]
    library_stats: np.ndarray
    protein_observed: np.ndarray
    n_rna_only_cells: int


def data_statistics(
    rna_counts,
    protein_counts,
    labels: np.ndarray,
    batch_codes: np.ndarray,
    n_labels: int,
    n_batch: int,
    batch_names,
    likelihoods: dict[str, str],
    mod_names: dict[str, str],
) -> DataStatistics:
    """Check the counts against their likelihoods and summarise them, in memory or streamed.

    Parameters
    ----------
    rna_counts, protein_counts
        Registered counts: scipy-sparse, dense, a DataFrame, or a backed (on-disk) matrix.
    labels, batch_codes
        Integer codes of every cell.
    n_labels, n_batch
        Numbers of labels and batches.
    batch_names
        Batch of each code (for the log of unmeasured ADTs).
    likelihoods, mod_names
        ``{"rna": …, "protein": …}``: each modality's likelihood and modality name.

    """
    cells = _CellCodes(labels, batch_codes, n_labels, n_batch, batch_names)
    summarise = (
        _streamed_statistics
        if is_backed(rna_counts) or is_backed(protein_counts)
        else _in_memory_statistics
    )
    return summarise(rna_counts, protein_counts, cells, likelihoods, mod_names)


@dataclass
class _CellCodes:
    """Label and batch codes of every cell, with the numbers and names of the categories."""

    labels: np.ndarray
    batch_codes: np.ndarray
    n_labels: int
    n_batch: int
    batch_names: object


def _in_memory_statistics(
    rna_counts, protein_counts, cells: _CellCodes, likelihoods, mod_names
) -> DataStatistics:
    """:func:`data_statistics` of data in memory, by whole-matrix operations."""
    protein_counts = _as_matrix(protein_counts)
    counts = {"rna": rna_counts, "protein": protein_counts}
    for role, values in counts.items():
        _check_values(values, likelihoods[role], mod_names[role])
    detected, cells_without = detected_by_batch(protein_counts, cells.batch_codes, cells.n_batch)
    log_unmeasured(
        detected, cells_without, cells.batch_codes, cells.batch_names, mod_names["protein"]
    )
    return DataStatistics(
        initial_output_bias={
            role: initial_output_bias(likelihoods[role], values, _NORMALIZE[role])
            for role, values in counts.items()
        },
        library_stats=per_label_moments(
            library_statistics(rna_counts, protein_counts), cells.labels, cells.n_labels
        ),
        protein_observed=detected,
        n_rna_only_cells=cells_without,
    )


def _streamed_statistics(
    rna_counts, protein_counts, cells: _CellCodes, likelihoods, mod_names
) -> DataStatistics:
    """:func:`data_statistics` of backed data, one block of cells in memory at a time."""
    n_cells = rna_counts.shape[0]
    n_features = rna_counts.shape[1] + protein_counts.shape[1]
    labels = np.asarray(cells.labels).ravel().astype(np.int64)
    batch_codes = np.asarray(cells.batch_codes).ravel().astype(np.int64)
    n_labels, n_batch = cells.n_labels, cells.n_batch
    bias_sums = {"rna": 0.0, "protein": 0.0}
    library = _LabelMoments(n_labels, len(LIBRARY_STAT_KEYS))
    detected = np.zeros((n_batch, protein_counts.shape[1]), dtype=bool)
    cells_without = 0
    for start, stop in row_blocks(n_cells, n_features):
        block = {
            "rna": read_rows(rna_counts, start, stop),
            "protein": read_rows(protein_counts, start, stop),
        }
        for role, values in block.items():
            _check_values(values, likelihoods[role], mod_names[role])
            terms = output_bias_terms(likelihoods[role], values, _NORMALIZE[role])
            bias_sums[role] = bias_sums[role] + np.asarray(terms.sum(axis=0)).ravel()
        library.add(library_statistics(block["rna"], block["protein"]), labels[start:stop])
        block_detected, block_without = detected_by_batch(
            block["protein"], batch_codes[start:stop], n_batch
        )
        detected |= block_detected
        cells_without += block_without
    log_unmeasured(detected, cells_without, batch_codes, cells.batch_names, mod_names["protein"])
    return DataStatistics(
        initial_output_bias={
            role: output_bias_from_mean(likelihoods[role], total / n_cells)
            for role, total in bias_sums.items()
        },
        library_stats=library.moments(),
        protein_observed=detected,
        n_rna_only_cells=cells_without,
    )


class _LabelMoments:
    """Per-label sums of values and squares: :func:`per_label_moments` over blocks of cells."""

    def __init__(self, n_labels: int, n_columns: int):
        self.counts = np.zeros(n_labels)
        self.sums = np.zeros((n_labels, n_columns))
        self.squares = np.zeros((n_labels, n_columns))

    def add(self, values: np.ndarray, labels: np.ndarray) -> None:
        self.counts += np.bincount(labels, minlength=len(self.counts))
        np.add.at(self.sums, labels, values)
        np.add.at(self.squares, labels, values**2)

    def moments(self) -> np.ndarray:
        counts = self.counts[:, None]
        has_cells = counts > 0
        # Labels without cells take the moments of all cells, as `per_label_moments` does.
        total = self.counts.sum()
        mean = np.where(has_cells, self.sums / np.maximum(counts, 1), self.sums.sum(0) / total)
        second = np.where(
            has_cells, self.squares / np.maximum(counts, 1), self.squares.sum(0) / total
        )
        std = np.sqrt(np.maximum(second - mean**2, 0.0))
        return np.stack([mean, std], axis=-1)


def _check_values(values, likelihood: str, mod_name: str) -> None:
    if likelihood in COUNT_LIKELIHOODS:
        check_counts(values, f"Modality {mod_name!r}", likelihood)
    else:
        # The encoder (and the "normal" likelihood) normalize on the fly with log1p/CLR.
        check_non_negative(values, f"Modality {mod_name!r}")


def _as_matrix(values):
    return values.to_numpy() if isinstance(values, pd.DataFrame) else values

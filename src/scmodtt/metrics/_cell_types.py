"""Which cell types a per-cell-type metric can use, and a report of the ones it skips."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

SKIPPED_COLUMNS = ["cell_type", "n_real", "n_synthetic"]


class SkippedCellTypesWarning(UserWarning):
    """A metric left out cell types with fewer than ``min_cells`` cells in one of the two sets."""


@dataclass(frozen=True)
class CellTypeSelection:
    """Cell types with at least ``min_cells`` cells in both sets, and the ones skipped.

    Attributes
    ----------
    used
        Cell types, sorted, with ``>= min_cells`` cells in both sets.
    counts
        ``cell_type``, ``n_real``, ``n_synthetic`` for the used types.
    skipped
        ``cell_type``, ``n_real``, ``n_synthetic`` for every type seen in either set but not used.

    """

    used: list[str]
    counts: pd.DataFrame
    skipped: pd.DataFrame


def check_min_cells(min_cells: int, smallest: int = 3) -> None:
    """Reject a ``min_cells`` too small for the statistic (Pearson needs 3 points to vary)."""
    if int(min_cells) != min_cells or min_cells < smallest:
        raise ValueError(f"min_cells must be an integer >= {smallest}, got {min_cells!r}.")


def select_cell_types(
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    min_cells: int,
    metric: str,
    first: str = "real",
    second: str = "synthetic",
) -> CellTypeSelection:
    """Keep cell types with ``>= min_cells`` cells in both sets; report (and warn about) the rest.

    Parameters
    ----------
    real_labels, synthetic_labels
        Labels of the cells in each set.
    min_cells
        Smallest number of cells per set for a type to be used.
    metric
        Name of the metric, for messages.
    first, second
        How messages name the two sets.

    Returns
    -------
    :class:`CellTypeSelection`.

    Raises
    ------
    ValueError
        If no cell type has ``>= min_cells`` cells in both sets.

    """
    check_min_cells(min_cells)
    counts = pd.DataFrame(
        {
            "n_real": pd.Series(real_labels).value_counts(),
            "n_synthetic": pd.Series(synthetic_labels).value_counts(),
        }
    )
    counts = counts.fillna(0).astype(np.int64).sort_index()
    counts.index.name = "cell_type"
    counts = counts.reset_index()
    enough = (counts["n_real"] >= min_cells) & (counts["n_synthetic"] >= min_cells)
    if not enough.any():
        n_first = dict(zip(counts.cell_type, counts.n_real, strict=True))
        n_second = dict(zip(counts.cell_type, counts.n_synthetic, strict=True))
        raise ValueError(
            f"{metric}: no cell type has >= {min_cells} cells in both the {first} and the "
            f"{second} set ({first}: {n_first}; {second}: {n_second}). Check that labels_key "
            "names the same labels in both sets, or lower min_cells."
        )
    skipped = counts.loc[~enough, SKIPPED_COLUMNS].reset_index(drop=True)
    if len(skipped):
        warnings.warn(
            f"{metric}: skipped {len(skipped)} cell type(s) with < {min_cells} cells in the "
            f"{first} or {second} set: "
            + ", ".join(
                f"{row.cell_type} ({first} {row.n_real}, {second} {row.n_synthetic})"
                for row in skipped.itertuples()
            )
            + ". They are listed in the result's skipped_cell_types.",
            SkippedCellTypesWarning,
            stacklevel=3,
        )
    return CellTypeSelection(
        used=counts.loc[enough, "cell_type"].tolist(),
        counts=counts.loc[enough].reset_index(drop=True),
        skipped=skipped,
    )


def type_codes(labels: np.ndarray, used: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mask of cells whose label is in ``used``, and their ``int64`` position in ``used``."""
    codes = pd.Categorical(labels, categories=used).codes.astype(np.int64)
    keep = codes >= 0
    return keep, codes[keep]

"""Matched RNA–protein pairs: parse them and find their columns in a :class:`SharedSpace`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._space import SharedSpace, _positions

PairsLike = Sequence[tuple[str, str]] | pd.DataFrame


def pair_table(pairs: PairsLike) -> pd.DataFrame:
    """Pairs as a DataFrame with string columns ``gene`` and ``protein``, duplicates dropped.

    Parameters
    ----------
    pairs
        A sequence of ``(gene, protein)`` tuples or a DataFrame with columns ``gene`` and
        ``protein`` (e.g. from :func:`scmodtt.pp.rna_protein_pairs`).

    Raises
    ------
    ValueError
        If the pairs are empty or not in one of these forms.

    """
    if isinstance(pairs, pd.DataFrame):
        missing = {"gene", "protein"} - set(pairs.columns)
        if missing:
            raise ValueError(
                f"pairs DataFrame lacks column(s) {sorted(missing)}; it needs 'gene' and "
                f"'protein' (has {list(pairs.columns)})."
            )
        table = pairs[["gene", "protein"]].astype(str)
    else:
        rows = list(pairs)
        if any(len(row) != 2 for row in rows):
            raise ValueError("pairs must be (gene, protein) tuples or a DataFrame.")
        table = pd.DataFrame(rows, columns=["gene", "protein"], dtype=str)
    table = table.drop_duplicates().reset_index(drop=True)
    if table.empty:
        raise ValueError(
            "No RNA–protein pairs given. Pass (gene, protein) tuples, e.g. from "
            "scmodtt.pp.rna_protein_pairs(mdata); a dataset whose ADT panel maps to no measured "
            "gene cannot be scored by cond_r or interact_r."
        )
    return table


def pair_columns(
    pairs: pd.DataFrame, space: SharedSpace, role: str
) -> tuple[np.ndarray, np.ndarray]:
    """Column positions of each pair's gene in ``space.rna`` and protein in ``space.protein``.

    Raises
    ------
    ValueError
        If a pair's gene or protein is not measured in ``space``.

    """
    gene_idx = _positions(space.gene_names, pairs["gene"], f"{role}: pair genes")
    protein_idx = _positions(space.protein_names, pairs["protein"], f"{role}: pair proteins")
    return gene_idx, protein_idx

"""Modules from gene-set collections (Hallmark, Reactome, GO): overlapping, pathway-defined."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike

import numpy as np
import pandas as pd

from .._gmt import read_gmt
from ._membership import residual_name, with_residual

logger = logging.getLogger(__name__)


def load_gene_sets(gene_sets: str | PathLike | Mapping[str, list[str]]) -> dict[str, list[str]]:
    """A GMT path or a ``{name: genes}`` mapping as a dict (the path is read with ``read_gmt``)."""
    if isinstance(gene_sets, str | PathLike):
        return read_gmt(gene_sets)
    if isinstance(gene_sets, Mapping):
        if any(isinstance(genes, str) for genes in gene_sets.values()):
            raise TypeError("Each gene set must be a list of genes, not a single string.")
        # Duplicated genes within a set would inflate its measured size.
        return {
            str(name): list(dict.fromkeys(str(gene) for gene in genes))
            for name, genes in gene_sets.items()
        }
    raise TypeError(
        f"`gene_sets` must be a GMT path or a mapping from set name to genes, got "
        f"{type(gene_sets).__name__}."
    )


def gene_set_membership(
    gene_sets: Mapping[str, list[str]], var_names: pd.Index, min_size: int, mod: str
) -> tuple[pd.DataFrame, int]:
    """Membership of measured genes in the gene sets that keep at least ``min_size`` of them.

    Genes match ``var_names`` exactly (same identifiers: symbols with symbols). Genes in no kept
    set form the residual module.

    Returns
    -------
    membership
        Boolean genes × kept sets (+ residual), sets in input order.
    n_dropped
        Number of sets with fewer than ``min_size`` measured genes.

    """
    if not gene_sets:
        raise ValueError("`gene_sets` holds no gene set.")
    if residual_name(mod) in gene_sets:
        raise ValueError(f"A gene set is named {residual_name(mod)!r}, the residual module's name.")
    if var_names.has_duplicates:
        raise ValueError(
            f"Modality {mod!r} has duplicated var_names; call "
            f"`mdata[{mod!r}].var_names_make_unique()`."
        )
    set_names = list(gene_sets)
    set_index = np.repeat(np.arange(len(set_names)), [len(genes) for genes in gene_sets.values()])
    gene_position = var_names.get_indexer([gene for genes in gene_sets.values() for gene in genes])
    measured = gene_position >= 0
    if not measured.any():
        example_genes = next(iter(gene_sets.values()))[:3]
        raise ValueError(
            f"None of the {len(set_names)} gene sets shares a gene with the {len(var_names)} "
            f"genes of modality {mod!r} (e.g. set genes {example_genes}, measured "
            f"{list(var_names[:3])}). "
            "Use gene sets with the same identifiers (symbols vs Ensembl IDs) and species."
        )
    set_index, gene_position = set_index[measured], gene_position[measured]
    set_sizes = np.bincount(set_index, minlength=len(set_names))
    kept_sets = np.flatnonzero(set_sizes >= min_size)
    if kept_sets.size == 0:
        raise ValueError(
            f"No gene set has at least min_size={min_size} measured genes of modality {mod!r} "
            f"(the largest overlap is {set_sizes.max()}). Lower `min_size` or measure more genes."
        )
    column_of_set = np.full(len(set_names), -1)
    column_of_set[kept_sets] = np.arange(kept_sets.size)
    in_kept = column_of_set[set_index] >= 0
    values = np.zeros((len(var_names), kept_sets.size), dtype=bool)
    values[gene_position[in_kept], column_of_set[set_index[in_kept]]] = True
    membership = pd.DataFrame(values, index=var_names, columns=[set_names[i] for i in kept_sets])
    n_dropped = len(set_names) - kept_sets.size
    logger.info(
        "%d of %d gene sets kept (>= %d measured genes); %d dropped.",
        kept_sets.size,
        len(set_names),
        min_size,
        n_dropped,
    )
    return with_residual(membership, mod), n_dropped

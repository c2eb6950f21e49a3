"""Reading gene-set collections in the GMT format (one set per line: name, description, genes)."""

from __future__ import annotations

import gzip
from os import PathLike
from pathlib import Path


def read_gmt(path: str | PathLike) -> dict[str, list[str]]:
    """Read a GMT file (plain or ``.gz``) into ``{set name: [gene symbols]}``.

    Parameters
    ----------
    path
        GMT file. Each line is ``name<TAB>description<TAB>gene<TAB>gene…``.

    Returns
    -------
    Gene sets in file order; duplicate genes within a set are removed, order kept.

    Examples
    --------
    >>> sets = read_gmt("h.all.v7.0.symbols.gmt")  # doctest: +SKIP
    >>> sets["HALLMARK_HYPOXIA"][:3]  # doctest: +SKIP

    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    gene_sets: dict[str, list[str]] = {}
    with opener(path, "rt") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = [field.strip() for field in line.rstrip("\n\r").split("\t")]
            if not fields or not fields[0]:
                continue
            if len(fields) < 3:
                raise ValueError(
                    f"{path}:{line_number} is not a GMT line: expected `name<TAB>description"
                    f"<TAB>gene…`, got {len(fields)} tab-separated field(s)."
                )
            genes = [gene for gene in fields[2:] if gene]
            gene_sets[fields[0]] = list(dict.fromkeys(genes))
    return gene_sets

"""Gene-set collections shipped with scmodtt, for module discovery from pathways."""

from __future__ import annotations

from .._gmt import read_gmt
from ._files import GENE_SET_FILES, path


def gene_sets(name: str) -> dict[str, list[str]]:
    """Load a gene-set collection shipped with scmodtt (human gene symbols).

    - ``"hallmark"``: MSigDB Hallmark v7.0, 50 sets; CC BY 4.0 in current MSigDB releases.
    - ``"reactome"``: Reactome pathways, 2,504 sets; CC BY 4.0.
    - ``"go_bp"``: GO Biological Process 2021 as distributed by Enrichr, 6,036 sets; CC BY 4.0.

    Parameters
    ----------
    name
        ``"hallmark"``, ``"reactome"`` or ``"go_bp"``.

    Returns
    -------
    ``{set name: [gene symbols]}`` in file order (see :func:`scmodtt._gmt.read_gmt`); a new
    dictionary on every call.

    Raises
    ------
    ValueError
        If ``name`` is not one of the shipped collections.

    Notes
    -----
    The GMT files come from the GSEApy test data (Hallmark, GO BP 2021 as distributed by Enrichr)
    and markziemann/vpa-senescence (Reactome). Cite the collection when you report results:

    - Liberzon A, et al. The Molecular Signatures Database Hallmark Gene Set Collection.
      Cell Systems 1, 417-425 (2015).
    - Gillespie M, et al. The reactome pathway knowledgebase 2022. Nucleic Acids Res 50,
      D687-D692 (2022).
    - The Gene Ontology Consortium. The Gene Ontology resource: enriching a GOld mine.
      Nucleic Acids Res 49, D325-D334 (2021); Kuleshov MV, et al. Enrichr. Nucleic Acids Res 44,
      W90-W97 (2016).

    Examples
    --------
    >>> import scmodtt
    >>> hallmark = scmodtt.datasets.gene_sets("hallmark")
    >>> len(hallmark)
    50
    >>> hallmark["HALLMARK_HYPOXIA"][:3]
    ['PGK1', 'PDK1', 'GBE1']

    """
    if name not in GENE_SET_FILES:
        raise ValueError(
            f"Unknown gene-set collection {name!r}. Valid names: "
            f"{', '.join(repr(valid) for valid in GENE_SET_FILES)}."
        )
    return read_gmt(path(name))

"""Real paired RNA + protein data sets and gene-set collections shipped with scmodtt.

Everything here loads offline from files inside the package (``scmodtt/data``), as new objects on
every call: :func:`reapseq_pbmc`, :func:`bmmc_cite`, :func:`tiny_cite` and :func:`pbmc_panel`
return MuData with ``rna`` and ``prot`` raw counts; :func:`gene_sets` returns a gene-set
collection; :func:`path` gives the path of a shipped file.
"""

from ._files import path
from ._gene_sets import gene_sets
from ._loaders import bmmc_cite, reapseq_pbmc, tiny_cite
from ._panel import pbmc_panel

__all__ = ["bmmc_cite", "gene_sets", "path", "pbmc_panel", "reapseq_pbmc", "tiny_cite"]

"""Real paired RNA + protein data sets and gene-set collections shipped with scmodtt.

Everything here loads offline from files inside the package (``scmodtt/data``), as new objects on
every call: :func:`reapseq_pbmc`, :func:`bmmc_cite` and :func:`tiny_cite` return MuData with
``rna`` and ``prot`` raw counts; :func:`gene_sets` returns a gene-set collection; :func:`path`
gives the path of a shipped file.
"""

from ._files import path
from ._gene_sets import gene_sets
from ._loaders import bmmc_cite, reapseq_pbmc, tiny_cite

__all__ = ["bmmc_cite", "gene_sets", "path", "reapseq_pbmc", "tiny_cite"]

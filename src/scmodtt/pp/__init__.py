"""Preprocessing for MODTT: normalization, gene selection, feature modules, RNA–protein pairs."""

from ._aliases import protein_aliases
from ._find_modules import find_modules
from ._hvg import highly_variable_genes
from ._module_report import module_report
from ._normalize import normalize
from ._pairs import rna_protein_pairs

__all__ = [
    "find_modules",
    "highly_variable_genes",
    "module_report",
    "normalize",
    "protein_aliases",
    "rna_protein_pairs",
]

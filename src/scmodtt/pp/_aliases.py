"""Antibody (ADT) names → gene symbols, through the curated table ``protein_aliases.csv``.

ADT names come decorated: REAP-seq appends the oligo barcode (``CD4_GTCCAGGC``), 10x TotalSeq sets
a suffix (``CD3_TotalSeqB``), some panels a species or ``anti-`` prefix (``Hu.CD3``), ECCITE-seq
gives an alias in parentheses (``IL7Ralpha (CD127)``). Names are cleaned, then looked up in the
table by a key that ignores case and punctuation (``PD-1`` = ``PD1``,
``HLA-A,B,C`` = ``HLA-A-B-C``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

import pandas as pd

_BARCODE_SUFFIX = re.compile(r"[_-][ACGTN]{6,}$")
_TOTALSEQ_SUFFIX = re.compile(r"[_\-. ]?TotalSeq[_\-. ]?[ABCD]?$", re.IGNORECASE)
_ADT_TAG = re.compile(r"^ADT[_\-.]|[_\-.]ADT$", re.IGNORECASE)
_SPECIES_PREFIX = re.compile(r"^(anti[_\-. ]?)?(human|hu|mouse|ms|rat)[_\-. ]", re.IGNORECASE)
_PARENTHESES = re.compile(r"^(?P<outer>[^()]*?)\s*\((?P<inner>[^()]*)\)\s*$")
#: Isotype controls and blanks, by name (used alongside ``var['isotype_control']``). Surface IgM
#: and IgD are real targets of B cells and do not match.
CONTROL_NAME = re.compile(r"isotype|(?<![a-z])m?igg\d*[a-d]?(?![a-z])|^blank$", re.IGNORECASE)


def alias_key(name: str) -> str:
    """Lookup key of an antibody name: upper case, letters and digits only."""
    return re.sub(r"[^0-9A-Z]", "", name.upper())


def clean_antibody_name(name: str) -> str:
    """Strip barcode, TotalSeq, ``ADT`` and species decorations from an ADT name."""
    cleaned = name.strip()
    for pattern in (_BARCODE_SUFFIX, _TOTALSEQ_SUFFIX, _ADT_TAG, _SPECIES_PREFIX):
        cleaned = pattern.sub("", cleaned).strip()
    return cleaned


def candidate_names(cleaned: str) -> list[str]:
    """Names to try in order: the whole name, the part before ``(…)``, the part inside, then
    the part before a clone suffix such as ``CD3_UCHT1``.
    """
    candidates = [cleaned]
    match = _PARENTHESES.match(cleaned)
    if match:
        candidates += [match["outer"], match["inner"]]
    candidates.append(re.split(r"[_ ]", cleaned)[0])
    return [candidate for candidate in dict.fromkeys(candidates) if candidate]


@cache
def _shipped_table() -> pd.DataFrame:
    with files("scmodtt.pp").joinpath("protein_aliases.csv").open(encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    keys = table["antibody"].map(alias_key)
    duplicated = table.loc[keys.duplicated(keep=False), "antibody"].tolist()
    if duplicated:
        raise ValueError(f"protein_aliases.csv lists one antibody twice: {duplicated}.")
    return table


def protein_aliases() -> pd.DataFrame:
    """The curated antibody → gene table shipped with scmodtt.

    Returns
    -------
    DataFrame with columns ``antibody`` (target name as panels write it), ``gene`` (HGNC symbol of
    the gene that encodes the epitope) and ``note`` (isoforms, glycan epitopes, multi-gene
    targets, for which one representative gene is given).

    Examples
    --------
    >>> import scmodtt
    >>> table = scmodtt.pp.protein_aliases()
    >>> table.set_index("antibody").loc["CD16", "gene"]
    'FCGR3A'

    """
    return _shipped_table().copy()


def alias_lookup(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Key → gene of the shipped table; ``extra`` antibody → gene entries take precedence."""
    table = _shipped_table()
    lookup = dict(zip(table["antibody"].map(alias_key), table["gene"], strict=True))
    for antibody, gene in (extra or {}).items():
        lookup[alias_key(antibody)] = gene
    return lookup


def gene_for(name: str, lookup: Mapping[str, str]) -> tuple[str, str | None]:
    """Cleaned antibody name and its gene symbol (``None`` when the table has no entry)."""
    cleaned = clean_antibody_name(name)
    for candidate in candidate_names(cleaned):
        gene = lookup.get(alias_key(candidate))
        if gene:
            return candidate, gene
    return cleaned, None

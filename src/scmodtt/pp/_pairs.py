"""RNA–protein pairs: each ADT matched to the gene that encodes its target.

The pairs are those of the RNA–protein metrics (see the user guide's metrics page,
``docs/user_guide/metrics.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from mudata import MuData

from ._aliases import CONTROL_NAME, alias_lookup, gene_for
from ._validation import get_modality

KEPT = "kept"
ISOTYPE_CONTROL = "isotype control"
NO_ALIAS = "no alias"
GENE_NOT_MEASURED = "gene not measured"


def rna_protein_pairs(
    mdata: MuData,
    min_detection: float = 0.02,
    rna_mod: str = "rna",
    protein_mod: str = "prot",
    layer: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Match every ADT to the gene that encodes its target and say which pairs are usable.

    ADT names are cleaned (oligo-barcode suffixes as in REAP-seq's ``CD4_GTCCAGGC``, TotalSeq
    suffixes, species prefixes) and mapped to gene symbols with the curated table
    :func:`protein_aliases` (e.g. CD45RA → PTPRC, CD16 → FCGR3A, CD56 → NCAM1,
    HLA-DR → HLA-DRA). A pair is kept when its gene is measured and detected (count > 0) in at
    least ``min_detection`` of the RNA cells. Isotype controls (``var["isotype_control"]`` of the
    protein modality, or names such as ``IgG1``, ``Mouse_IgG2b``, ``Blank``) are dropped.

    Every antibody is its own pair: duplicated antibodies (REAP-seq measures CD4, CD8 and CD45
    with two barcodes each) and different antibodies against one gene (CD45, CD45RA, CD45RO →
    PTPRC) each give a row, so a gene can appear in several kept pairs.

    Parameters
    ----------
    mdata
        MuData with an RNA and a protein modality.
    min_detection
        Fewest RNA cells, as a fraction, in which the gene must be detected.
    rna_mod
        RNA modality.
    protein_mod
        Protein (ADT) modality.
    layer
        RNA layer with counts (any values where 0 means not detected); ``None`` reads ``.X``.
    aliases
        Extra antibody → gene entries; they take precedence over the shipped table.

    Returns
    -------
    One row per ADT, in the order of ``mdata[protein_mod].var_names``, with columns
    ``protein`` (ADT name), ``antibody`` (cleaned target name), ``gene`` (``None`` without alias),
    ``detection`` (fraction of RNA cells with the gene detected; NaN if not measured), ``kept``
    (bool) and ``reason`` (``"kept"``, ``"isotype control"``, ``"no alias"``,
    ``"gene not measured"`` or ``"detected in 1.98% < 2%"``). A warning lists the ADTs without
    alias. Select the usable pairs with ``pairs[pairs["kept"]]``.

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.reapseq_pbmc()  # doctest: +SKIP
    >>> pairs = scmodtt.pp.rna_protein_pairs(mdata)  # doctest: +SKIP
    >>> pairs.loc[pairs["kept"], ["protein", "gene"]]  # doctest: +SKIP

    """
    if not 0 <= min_detection <= 1:
        raise ValueError(f"min_detection is a fraction of cells in [0, 1], got {min_detection}.")
    rna = get_modality(mdata, rna_mod, "rna_mod")
    proteins = get_modality(mdata, protein_mod, "protein_mod")
    if layer is not None and layer not in rna.layers:
        raise ValueError(
            f"Layer {layer!r} not found in modality {rna_mod!r}; available layers: "
            f"{list(rna.layers)}. Pass `layer=None` to read `.X`."
        )
    lookup = alias_lookup(aliases)
    names = proteins.var_names.astype(str)
    matched = [gene_for(name, lookup) for name in names]
    pairs = pd.DataFrame(
        {
            "protein": names,
            "antibody": [antibody for antibody, _ in matched],
            "gene": pd.Series([gene for _, gene in matched], dtype=object),
        }
    )
    is_control = np.asarray(names.str.contains(CONTROL_NAME), dtype=bool)
    if "isotype_control" in proteins.var:
        is_control |= proteins.var["isotype_control"].fillna(False).to_numpy(dtype=bool)

    # First column of each gene symbol (var_names should be unique; take the first if not).
    gene_column = pd.Series(np.arange(rna.n_vars), index=rna.var_names)
    gene_column = gene_column[~gene_column.index.duplicated()]
    column = gene_column.reindex(pairs["gene"]).to_numpy()
    measured = ~np.isnan(column)
    detection = np.full(len(pairs), np.nan)
    if measured.any():
        counts = rna.X if layer is None else rna.layers[layer]
        counts = counts[:, column[measured].astype(np.int64)]
        detected = (counts > 0).sum(axis=0)
        detection[measured] = np.asarray(detected).ravel() / rna.n_obs
    pairs["detection"] = detection

    has_alias = pairs["gene"].notna().to_numpy()
    reason = np.select(
        [is_control, ~has_alias, ~measured, detection < min_detection],
        [ISOTYPE_CONTROL, NO_ALIAS, GENE_NOT_MEASURED, "low"],
        default=KEPT,
    ).astype(object)
    low = reason == "low"
    reason[low] = [
        f"detected in {100 * value:.3g}% < {100 * min_detection:g}%" for value in detection[low]
    ]
    pairs["kept"] = reason == KEPT
    pairs["reason"] = reason

    unmapped = pairs.loc[(reason == NO_ALIAS), "protein"].tolist()
    if unmapped:
        warnings.warn(
            f"{len(unmapped)} of {len(pairs)} ADTs have no entry in the alias table and are "
            f"dropped: {unmapped}. Add them with `aliases={{'NAME': 'GENE'}}`.",
            UserWarning,
            stacklevel=2,
        )
    return pairs

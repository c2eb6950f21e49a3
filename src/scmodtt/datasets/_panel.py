"""A PBMC panel of three technologies on their shared genes and antibody targets."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import mudata
import pandas as pd
import scipy.sparse as sp

from ._files import read_shipped_mudata

#: The panel's data sets in ``obs['dataset']``, in the order of its cells.
PANEL_DATASETS = ("reapseq", "eccite", "pbmc5k")
#: ``cell_type`` of the cells without labels (the label :meth:`scmodtt.MODTT.prepare_query_mudata`
#: gives unlabelled query cells; a string, since MODTT's label prior needs one for every cell).
UNLABELLED = "unknown"
_OBS_COLUMNS = ("dataset", "sample", "cell_type")


def pbmc_panel() -> mudata.MuData:
    """REAP-seq, ECCITE-seq and 10x PBMC5k PBMCs as one panel: shared genes and ADTs, a batch each.

    8,188 peripheral blood mononuclear cells from three technologies and labs: the 7,488
    REAP-seq cells of :func:`reapseq_pbmc` (with its derived labels), 500 ECCITE-seq cells
    (Mimitou et al. 2019, control sample) and 200 10x Genomics TotalSeq-B cells (5k PBMC v3),
    on the 10,334 genes all three measure and the 17 antibody targets all three panels have.
    For transferring labels and imputing proteins across data sets, e.g. with
    :func:`scmodtt.benchmark.transfer` (``batch_key="dataset"``).

    Returns
    -------
    A new :class:`mudata.MuData` on every call, with modalities

    - ``rna``: 8,188 × 10,334 raw UMI counts (``int32`` CSR) in ``.X``; gene symbols, in
      :func:`reapseq_pbmc`'s order.
    - ``prot``: 8,188 × 17 raw antibody counts (``int32`` CSR) in ``.X``. ``var_names`` are the
      targets as REAP-seq's antibodies name them without the barcode (``CD3``, ``CD4``, ``CD8``,
      ``CD45RA``, ``CD127``, ``HLA-DRA``, …); ``var['gene']`` is the target's gene symbol,
      ``var['antibody_reapseq']``, ``var['antibody_eccite']`` and ``var['antibody_pbmc5k']`` each
      data set's original antibody name (``CD3_AGGATCGA``, ``CD3``, ``CD3_TotalSeqB``),
      ``var['isotype_control']`` is False (controls are not shared).

    and, in the top-level ``obs`` and in each modality's ``obs``:

    - ``dataset``: ``reapseq`` (7,488 cells), ``eccite`` (500) or ``pbmc5k`` (200), the batch;
    - ``sample``: REAP-seq's ``PBMC_2`` / ``PBMC_3``, else the data set's name (a finer batch);
    - ``cell_type``: REAP-seq's derived labels (see :func:`reapseq_pbmc`, including
      ``doublet-like`` and ``low_quality``); ``"unknown"`` for the unlabelled ECCITE-seq and
      PBMC5k cells.

    ``uns`` holds ``provenance`` (JSON, with each source's), ``license``, ``citation`` and
    ``adt_matching``: every antibody of the three panels with its target, total count and fate
    (``kept``, ``isotype control``, ``duplicate target …``, ``target not in every data set``).

    Notes
    -----
    Genes are matched by symbol (REAP-seq and ECCITE-seq are annotated on hg19, PBMC5k on GRCh38;
    renamed genes drop out). Antibodies are matched by target: the gene symbol that
    :func:`scmodtt.pp.protein_aliases` gives for the cleaned name (``IL7Ralpha (CD127)``,
    ``CD127_TotalSeqB`` and ``CD127_TGGGAGCT`` → IL7R), except that isoform antibodies (CD45RA,
    CD45RO) are their own targets. Where a panel has several antibodies against one target the
    one with the largest total count in that data set is kept: REAP-seq's ``CD4_GTCCAGGC`` (of
    two), ``CD8_CAATCCCT`` (of ``CD8_GTATCGAG`` and ``CD8a_ACCCGCAC``), and ECCITE-seq's
    ``PD-1 (CD279)`` over ``PD1 (CD279)`` and ``PD-L1 (CD274)`` over ``B7-H1 (PD-L1)``. CD45
    (both REAP-seq antibodies) is not shared: PBMC5k has none. ``scripts/build_pbmc_panel.py``
    writes the shipped file (the ECCITE-seq and PBMC5k cells, 2.8 MB); the REAP-seq cells are
    read from :func:`reapseq_pbmc`'s file. Counts are unchanged.

    The three sets differ in chemistry and antibody clones, so their ADT scales differ even for
    one target. Only REAP-seq is labelled: treat ``"unknown"`` as missing, not as a cell type.

    Data: GEO GSE100501 (REAP-seq, see :func:`reapseq_pbmc`); GEO GSE126310 via the CiteFuse R
    package's example data (SydneyBioX/CiteFuse, GPL-3); 10x Genomics' 5k_pbmc_protein_v3
    (CC BY 4.0) via scvi-tools' test data. Cite Peterson et al. 2017, and:

    Mimitou EP, Cheng A, Montalbano A, et al. Multiplexed detection of proteins, transcriptomes,
    clonotypes and CRISPR perturbations in single cells. *Nat Methods* 16, 409-412 (2019).
    https://doi.org/10.1038/s41592-019-0392-0

    10x Genomics. 5k Peripheral blood mononuclear cells (PBMCs) from a healthy donor with cell
    surface proteins (v3 chemistry) (2019).

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.pbmc_panel()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((8188, 10334), (8188, 17))
    >>> mdata.obs["dataset"].value_counts().to_dict()
    {'reapseq': 7488, 'eccite': 500, 'pbmc5k': 200}
    >>> mdata["prot"].var.loc["CD127", ["antibody_eccite", "antibody_pbmc5k"]].tolist()
    ['IL7Ralpha (CD127)', 'CD127_TotalSeqB']

    """
    others = read_shipped_mudata("pbmc_panel")
    reapseq = read_shipped_mudata("reapseq_pbmc")
    genes = others["rna"].var_names
    prot_var = others["prot"].var.copy()
    missing = genes.difference(reapseq["rna"].var_names).union(
        pd.Index(prot_var["antibody_reapseq"]).difference(reapseq["prot"].var_names)
    )
    if len(missing):
        raise RuntimeError(
            f"The shipped pbmc_panel and reapseq_pbmc files disagree: {len(missing)} panel "
            f"features are not in reapseq_pbmc (e.g. {list(missing[:5])}). Rebuild the panel with "
            "`python scripts/build_pbmc_panel.py` after `scripts/make_datasets.py`."
        )
    reapseq_obs = pd.DataFrame(
        {
            "dataset": PANEL_DATASETS[0],
            "sample": reapseq.obs["sample"].astype(str),
            "cell_type": reapseq.obs["cell_type"].astype(str),
        },
        index=reapseq.obs_names,
    )
    obs = pd.concat([reapseq_obs, others.obs[list(_OBS_COLUMNS)].astype(str)])
    categories = {
        "dataset": list(PANEL_DATASETS),
        "sample": [*reapseq.obs["sample"].cat.categories, *PANEL_DATASETS[1:]],
        "cell_type": [*reapseq.obs["cell_type"].cat.categories, UNLABELLED],
    }
    for column, values in categories.items():
        obs[column] = pd.Categorical(obs[column], categories=values)
    modalities = {
        "rna": ad.AnnData(
            X=sp.vstack([reapseq["rna"][:, genes].X, others["rna"].X], format="csr"),
            obs=obs.copy(),
            var=others["rna"].var.copy(),
        ),
        "prot": ad.AnnData(
            X=sp.vstack(
                [reapseq["prot"][:, prot_var["antibody_reapseq"].to_numpy()].X, others["prot"].X],
                format="csr",
            ),
            obs=obs.copy(),
            var=prot_var,
        ),
    }
    with warnings.catch_warnings(), mudata.set_options(pull_on_update=False):
        # Seven targets are named like their gene (CD4, CD14, …): var_names are unique within
        # each modality, which is what scvi-tools and scanpy need.
        warnings.filterwarnings("ignore", message="var_names are not unique")
        mdata = mudata.MuData(modalities)
    mdata.obs = obs.copy()
    provenance = json.loads(others.uns["provenance"])
    provenance["sources"] = {"reapseq": json.loads(reapseq.uns["provenance"])} | provenance[
        "sources"
    ]
    mdata.uns.update(
        {
            "provenance": json.dumps(provenance),
            "license": others.uns["license"],
            "citation": others.uns["citation"],
            "label_columns": ["cell_type"],
            "adt_matching": others.uns["adt_matching"].copy(),
        }
    )
    return mdata

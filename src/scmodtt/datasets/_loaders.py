"""Paired RNA + protein data sets shipped with scmodtt, loaded offline as MuData."""

from __future__ import annotations

import mudata

from ._files import read_shipped_mudata


def reapseq_pbmc() -> mudata.MuData:
    """REAP-seq human PBMCs with derived cell-type labels (Peterson et al. 2017).

    7,488 peripheral blood mononuclear cells of two donor samples (``PBMC_2``, ``PBMC_3``)
    profiled by REAP-seq: RNA plus 48 antibody tags (44 against surface and intracellular
    proteins, 3 isotype controls and a ``Blank`` tag). Genes are those detected in at least 10
    cells (11,753 of 32,738).

    Returns
    -------
    A new :class:`mudata.MuData` on every call, with modalities

    - ``rna``: 7,488 × 11,753 raw UMI counts (``int32`` CSR) in ``.X``; gene symbols (hg19).
    - ``prot``: 7,488 × 48 raw antibody counts (``int32`` CSR) in ``.X``;
      ``var['isotype_control']``.

    and, in the top-level ``obs`` and in each modality's ``obs``:

    - ``sample``: ``PBMC_2`` (3,158 cells) or ``PBMC_3`` (4,330 cells);
    - ``cell_type``: 12 cell types plus ``doublet-like`` (401 cells) and ``low_quality``
      (74 cells failing QC), derived by ``scripts/derive_reapseq_labels.py``;
    - ``passes_qc``: whether the cell passed QC (>= 200 genes, <= 10% mitochondrial counts);
    - ``leiden``: the Leiden cluster the name was given to (``"none"`` for cells failing QC).

    ``uns`` holds ``provenance`` (JSON: source repository, files, commit, processing),
    ``license``, ``citation`` and ``cell_type_derivation`` (procedure, parameters and the
    per-cluster marker scores and naming rule).

    Notes
    -----
    The data set has no published cell-type labels. The labels were derived once, by a fixed
    procedure: QC; a joint RNA + ADT neighbour graph (30 RNA and 15 ADT principal components,
    exact 20-nearest neighbours); Leiden clustering (resolution 1.5, seed 0); and names from fixed
    gates on cluster means of canonical marker z-scores (ADT: CD3, CD4, CD8, CD45RA/RO, CD197,
    CD56, CD335, CD19, CD20, CD14, CD33, CD11b; RNA: e.g. MS4A1, NKG7, GNLY, LYZ, FCGR3A,
    FCER1A, LILRA4, PPBP). The panel has no CD16, CD11c or CD123 antibody: monocyte subsets and
    dendritic cells are named from RNA markers. See ``docs/datasets.md`` for the cell counts
    and the marker dotplots. Treat ``doublet-like`` and ``low_quality`` cells as you would
    filtered cells; the counts of all 7,488 cells are kept.

    Antibody names keep the source's oligo-barcode suffix (``CD4_GTCCAGGC``); CD4, CD8 and CD45
    have two antibodies each (and ``CD8a`` a third for CD8). ``isotype_control`` flags the
    isotype controls and ``Blank``.

    Data: NCBI GEO GSE100501 (public; NCBI places no restrictions on the use of GEO data), via
    the jaydu1/scVAEIT repository (MIT). Cite:

    Peterson VM, Zhang KX, Kumar N, et al. Multiplexed quantification of proteins and
    transcripts in single cells. *Nat Biotechnol* 35, 936-939 (2017).
    https://doi.org/10.1038/nbt.3973

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.reapseq_pbmc()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((7488, 11753), (7488, 48))
    >>> int((mdata.obs["cell_type"] == "CD14 monocytes").sum())
    1983
    >>> cells = mdata[~mdata.obs["cell_type"].isin(["doublet-like", "low_quality"])].copy()

    """
    return read_shipped_mudata("reapseq_pbmc")


def bmmc_cite() -> mudata.MuData:
    """600 bone-marrow mononuclear cells, 10x CITE-seq, NeurIPS 2021 challenge (Luecken et al.).

    The "starter" subset of the NeurIPS 2021 multimodal single-cell integration challenge data
    (site 1, donors 1 and 2), with the challenge's curated cell-type labels: 41 cell types, two
    batches, 1,000 pre-selected genes and 134 antibodies.

    Returns
    -------
    A new :class:`mudata.MuData` on every call, with modalities

    - ``rna``: 600 × 1,000 raw UMI counts (``int32`` CSR) in ``.X``; ``var['gene_ids']``.
    - ``prot``: 600 × 134 raw antibody counts (``int32`` CSR) in ``.X``;
      ``var['isotype_control']`` (no isotype controls in this panel).

    and, in the top-level ``obs`` (so that ``setup_mudata(labels_key="cell_type",
    batch_key="batch")`` finds them) and in each modality's ``obs``: ``cell_type`` (41 types),
    ``batch`` (``s1d1``: 311 cells, ``s1d2``: 289 cells), ``is_train``, ``phase`` and
    ``pct_counts_mt`` from the source. ``uns`` holds ``provenance``, ``license`` and
    ``citation``.

    Notes
    -----
    Three antibodies have the name of a measured gene (CD36, CD69, HLA-E), so the top-level
    ``mdata.var_names`` are not unique; within each modality they are.

    Data: GEO GSE194122, released by Open Problems for the NeurIPS 2021 challenge (CC BY 4.0 as
    listed by scvi-hub), via the openproblems-bio/neurips2021_multimodal_viash test resources
    (MIT). Cite:

    Luecken MD, Burkhardt DB, Cannoodt R, et al. A sandbox for prediction and integration of DNA,
    RNA, and proteins in single cells. *Proceedings of the Neural Information Processing Systems
    Track on Datasets and Benchmarks* (2021).

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.bmmc_cite()
    >>> mdata.n_obs, mdata["rna"].n_vars, mdata["prot"].n_vars
    (600, 1000, 134)
    >>> mdata.obs["cell_type"].nunique(), mdata.obs["batch"].nunique()
    (41, 2)

    """
    return read_shipped_mudata("bmmc_cite")


def tiny_cite() -> mudata.MuData:
    """A tiny labelled REAP-seq subset for tests and examples (300 cells, 300 genes, 48 ADTs).

    60 cells of each of five cell types of :func:`reapseq_pbmc` (CD4 naive T, CD8 effector T,
    NK, B, CD14 monocytes), 30 from each sample, drawn with a fixed seed. The genes are those of
    the ADT targets (e.g. CD3E, CD4, CD8A, MS4A1, NCAM1, PTPRC) and of the labelling markers,
    then the most variable ones, 300 in all; all 48 antibodies are kept. Loads in a fraction of a
    second.

    Returns
    -------
    A new :class:`mudata.MuData` on every call: ``rna`` (300 × 300) and ``prot`` (300 × 48) raw
    counts (``int32`` CSR) in ``.X``, ``prot.var['isotype_control']``; ``obs['cell_type']`` and
    ``obs['sample']`` in the top-level and per-modality ``obs``; ``uns`` with ``provenance``,
    ``license`` and ``citation``.

    Notes
    -----
    Cite Peterson et al. 2017 (see :func:`reapseq_pbmc`) for these data.

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.tiny_cite()
    >>> mdata.obs["cell_type"].value_counts().to_dict()
    {'CD4 naive T': 60, 'CD8 effector T': 60, 'NK': 60, 'B': 60, 'CD14 monocytes': 60}

    """
    return read_shipped_mudata("tiny_cite")

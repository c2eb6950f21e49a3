"""Build every data file shipped in ``src/scmodtt/data`` from ``/work/shared/data``.

Deterministic and rerunnable: ``python scripts/make_datasets.py`` overwrites the shipped files with
the same content (labels from ``derive_reapseq_labels.py``, seeded cell sampling, gzip without
timestamps). It prints the size of each file and fails if the total exceeds the budget.

Files
-----
reapseq_pbmc.h5mu
    Peterson et al. 2017 REAP-seq PBMCs, all 7,488 cells, genes detected in >= 10 cells, derived
    ``cell_type`` labels.
bmmc_cite.h5mu
    The 600-cell NeurIPS 2021 BMMC CITE-seq starter set, unchanged counts, labels and batch also in
    the top-level ``obs``.
tiny_cite.h5mu
    300 labelled REAP-seq cells (5 types x 60, both samples) x 300 genes (the ADT-paired genes,
    the labelling markers and highly variable genes) and all 48 ADTs, for unit tests.
genesets/*.gmt.gz
    MSigDB Hallmark v7.0, Reactome pathways and GO Biological Process 2021, gzipped.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import warnings
from pathlib import Path

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
sys.path.insert(0, str(SCRIPTS_DIR))
sys.path.insert(0, str(REPO_ROOT / "src"))

import derive_reapseq_labels as labelling  # noqa: E402

from scmodtt._normalization import log1p_normalize  # noqa: E402

SHARED_DATA = Path("/work/shared/data")
OUT_DIR = REPO_ROOT / "src" / "scmodtt" / "data"
#: Everything under src/scmodtt/data together must stay below this (bytes).
SIZE_BUDGET = 25_000_000

SEED = 0
TINY_CELL_TYPES = ["CD4 naive T", "CD8 effector T", "NK", "B", "CD14 monocytes"]
TINY_CELLS_PER_TYPE = 60
TINY_N_GENES = 300
#: Fraction of the tiny set's cells in which a filler gene must be detected.
TINY_MIN_DETECTION = 0.1

GENE_SET_SOURCES = {
    "hallmark.gmt.gz": "h.all.v7.0.symbols.gmt",
    "reactome.gmt.gz": "ReactomePathways.gmt",
    "go_bp_2021.gmt.gz": "enrichr.GO_Biological_Process_2021.gmt",
}

REAPSEQ_CITATION = (
    "Peterson VM, Zhang KX, Kumar N, et al. Multiplexed quantification of proteins and "
    "transcripts in single cells. Nat Biotechnol 35, 936-939 (2017). doi:10.1038/nbt.3973"
)
REAPSEQ_LICENSE = (
    "Public GEO data (GSE100501); NCBI places no restrictions on the use or distribution of GEO "
    "data (submitters may hold rights). Files taken from jaydu1/scVAEIT (MIT licence). Derived "
    "cell-type labels: scmodtt, BSD-3-Clause. Cite Peterson et al. 2017."
)
BMMC_CITATION = (
    "Luecken MD, Burkhardt DB, Cannoodt R, et al. A sandbox for prediction and integration of "
    "DNA, RNA, and proteins in single cells. NeurIPS Datasets and Benchmarks Track (2021)."
)
BMMC_LICENSE = (
    "NeurIPS 2021 multimodal single-cell data (GEO GSE194122) released by Open Problems, "
    "CC BY 4.0 (as listed by scvi-hub); subset from openproblems-bio/neurips2021_multimodal_viash "
    "test resources (MIT licence). Cite Luecken et al. 2021."
)

#: REAP-seq antibody target -> gene symbol (hg19 annotation of the source), for the tiny set's
#: gene selection only. Targets without a gene (isotype controls, Blank) are absent.
REAPSEQ_ADT_GENES = {
    "CD3": "CD3E",
    "CD4": "CD4",
    "CD8": "CD8A",
    "CD8a": "CD8A",
    "CD9": "CD9",
    "CD11b": "ITGAM",
    "CD14": "CD14",
    "CD19": "CD19",
    "CD20": "MS4A1",
    "CD25": "IL2RA",
    "CD27": "CD27",
    "CD28": "CD28",
    "CD33": "CD33",
    "CD40": "CD40",
    "CD45": "PTPRC",
    "CD45RA": "PTPRC",
    "CD45RO": "PTPRC",
    "CD56": "NCAM1",
    "CD66b": "CEACAM8",
    "CD68": "CD68",
    "CD69": "CD69",
    "CD73": "NT5E",
    "CD127": "IL7R",
    "CD134": "TNFRSF4",
    "CD137": "TNFRSF9",
    "CD152": "CTLA4",
    "CD154": "CD40LG",
    "CD155": "PVR",
    "CD158E1": "KIR3DL1",
    "CD197": "CCR7",
    "CD223": "LAG3",
    "CD272": "BTLA",
    "CD273": "PDCD1LG2",
    "CD274": "CD274",
    "CD278": "ICOS",
    "CD279": "PDCD1",
    "CD335": "NCR1",
    "CD357": "TNFRSF18",
    "FOXP3": "FOXP3",
    "HLA-DRA": "HLA-DRA",
    "TIGIT": "TIGIT",
}


def read_source(name: str) -> mudata.MuData:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return mudata.read_h5mu(SHARED_DATA / name)


def set_obs(mdata: mudata.MuData, obs: pd.DataFrame) -> None:
    """The same cell annotations in the top-level obs and in every modality's obs.

    Top level so that ``setup_mudata(labels_key=...)`` finds them; per modality so that scanpy on
    ``mdata["rna"]`` alone sees them too.
    """
    obs = obs.loc[mdata.obs_names]
    for modality in mdata.mod.values():
        modality.obs = obs.copy()
    mdata.obs = obs.copy()


def set_uns(mdata: mudata.MuData, provenance: dict, license_: str, citation: str) -> None:
    """Provenance (JSON, as in the source files), licence and citation in every ``uns``."""
    entries = {
        "provenance": json.dumps(provenance),
        "license": license_,
        "citation": citation,
        "label_columns": ["cell_type"],
    }
    for container in [mdata, *mdata.mod.values()]:
        container.uns.clear()
        container.uns.update(entries)


def extended_provenance(source: mudata.MuData, source_file: str, processing: str) -> dict:
    provenance = json.loads(source.uns["provenance"])
    provenance["scmodtt"] = {
        "built_by": "scripts/make_datasets.py",
        "source_file": f"/work/shared/data/{source_file}",
        "processing": processing,
    }
    return provenance


def as_int_csr(matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix)
    if not np.array_equal(matrix.data, np.round(matrix.data)):
        raise ValueError("counts are not integers")
    return matrix.astype(np.int32)


def write(mdata: mudata.MuData, name: str) -> Path:
    path = OUT_DIR / name
    for modality in mdata.mod.values():
        modality.X = as_int_csr(modality.X)
    # Level 9 costs seconds at build time and saves ~13% over the default level 4.
    mdata.write(path, compression="gzip", compression_opts=9)
    return path


def build_reapseq() -> mudata.MuData:
    source_file = "peterson2017_reapseq_pbmc.h5mu"
    source = read_source(source_file)
    derived = labelling.derive_labels(source)

    rna = source["rna"]
    detected_in = np.asarray((rna.X > 0).sum(axis=0)).ravel()
    keep_genes = detected_in >= labelling.MIN_CELLS_PER_GENE
    rna = ad.AnnData(X=rna.X[:, keep_genes], var=rna.var.loc[keep_genes].copy())
    rna.obs_names = source.obs_names
    prot = ad.AnnData(X=source["prot"].X, var=source["prot"].var.copy())
    prot.obs_names = source.obs_names
    mdata = mudata.MuData({"rna": rna, "prot": prot})

    obs = pd.DataFrame(index=source.obs_names)
    obs["sample"] = pd.Categorical(source.obs["sample"])
    obs["cell_type"] = derived.obs["cell_type"]
    obs["passes_qc"] = derived.obs["passes_qc"]
    obs["leiden"] = pd.Categorical(derived.obs["leiden"])
    set_obs(mdata, obs)

    n_genes = int(keep_genes.sum())
    processing = (
        f"RNA genes reduced to the {n_genes} of {keep_genes.size} detected in >= "
        f"{labelling.MIN_CELLS_PER_GENE} cells; counts unchanged; obs['cell_type'] derived by "
        "scripts/derive_reapseq_labels.py (QC, joint RNA+ADT kNN graph, Leiden, rule-based "
        "marker naming); see uns['cell_type_derivation']."
    )
    set_uns(
        mdata,
        extended_provenance(source, source_file, processing),
        REAPSEQ_LICENSE,
        REAPSEQ_CITATION,
    )
    clusters = derived.clusters.reset_index()
    clusters.columns = [str(column) for column in clusters.columns]
    mdata.uns["cell_type_derivation"] = {
        "script": "scripts/derive_reapseq_labels.py",
        "procedure": labelling.PROCEDURE_SUMMARY,
        "parameters": {
            "seed": labelling.SEED,
            "min_genes_per_cell": labelling.MIN_GENES_PER_CELL,
            "max_pct_mito": labelling.MAX_PCT_MITO,
            "n_top_genes": labelling.N_TOP_GENES,
            "n_rna_pcs": labelling.N_RNA_PCS,
            "n_adt_pcs": labelling.N_ADT_PCS,
            "n_neighbors": labelling.N_NEIGHBORS,
            "leiden_resolution": labelling.LEIDEN_RESOLUTION,
            "min_cluster_cells": labelling.MIN_CLUSTER_CELLS,
            "max_co_detection": labelling.MAX_CO_DETECTION,
        },
        "clusters": clusters.set_index("cluster"),
    }
    return mdata


def build_bmmc() -> mudata.MuData:
    source_file = "neurips2021_bmmc_cite_starter.h5mu"
    source = read_source(source_file)
    modalities = {
        name: ad.AnnData(X=source[name].X, var=source[name].var.copy()) for name in ("rna", "prot")
    }
    for modality in modalities.values():
        modality.obs_names = source.obs_names
    mdata = mudata.MuData(modalities)
    set_obs(mdata, source["rna"].obs.copy())
    processing = "Unchanged counts; cell_type and batch copied to the top-level obs."
    set_uns(
        mdata, extended_provenance(source, source_file, processing), BMMC_LICENSE, BMMC_CITATION
    )
    return mdata


def tiny_genes(rna: ad.AnnData, prot_targets: list[str]) -> list[str]:
    """ADT-paired genes, labelling markers, then the most variable genes, up to TINY_N_GENES."""
    detected = np.asarray((rna.X > 0).sum(axis=0)).ravel() > 0
    measured = set(rna.var_names[detected])
    paired = [REAPSEQ_ADT_GENES[t] for t in prot_targets if t in REAPSEQ_ADT_GENES]
    markers = [
        target
        for panel in labelling.MARKER_PANELS.values()
        for modality, target in panel
        if modality == "rna"
    ]
    chosen = list(dict.fromkeys(gene for gene in paired + markers if gene in measured))

    # Fill up with variable genes among those detected in >= 10% of the cells: on 300 cells the
    # normalized dispersion of a gene seen in one or two cells is noise.
    common = np.asarray((rna.X > 0).mean(axis=0)).ravel() >= TINY_MIN_DETECTION
    normalized = ad.AnnData(
        sp.csr_matrix(log1p_normalize(rna.X)[:, common]),
        var=pd.DataFrame(index=rna.var_names[common]),
    )
    sc.pp.highly_variable_genes(normalized, flavor="seurat", n_top_genes=TINY_N_GENES)
    ranked = normalized.var.sort_values(
        "dispersions_norm", ascending=False, kind="stable"
    ).index.tolist()
    for gene in ranked:
        if len(chosen) >= TINY_N_GENES:
            break
        if gene not in chosen:
            chosen.append(gene)
    # Keep the source's gene order so the tiny set is a plain subset of reapseq_pbmc.
    return [gene for gene in rna.var_names if gene in set(chosen)]


def build_tiny(reapseq: mudata.MuData) -> mudata.MuData:
    rng = np.random.default_rng(SEED)
    obs = reapseq.obs
    cells = []
    for cell_type in TINY_CELL_TYPES:
        samples = sorted(obs["sample"].unique())
        for i, sample in enumerate(samples):
            # Split each type evenly over the samples (the first sample takes the odd cell).
            n_take = TINY_CELLS_PER_TYPE // len(samples) + (i < TINY_CELLS_PER_TYPE % len(samples))
            pool = obs.index[(obs["cell_type"] == cell_type) & (obs["sample"] == sample)]
            cells.extend(sorted(rng.choice(pool, size=n_take, replace=False)))
    cells = [cell for cell in obs.index if cell in set(cells)]  # source order

    rna = reapseq["rna"][cells]
    targets = [labelling.antibody_target(name) for name in reapseq["prot"].var_names]
    genes = tiny_genes(rna, targets)
    modalities = {
        "rna": ad.AnnData(X=rna[:, genes].X, var=rna.var.loc[genes].copy()),
        "prot": ad.AnnData(X=reapseq["prot"][cells].X, var=reapseq["prot"].var.copy()),
    }
    for modality in modalities.values():
        modality.obs_names = cells
    mdata = mudata.MuData(modalities)
    tiny_obs = obs.loc[cells, ["sample", "cell_type"]].copy()
    tiny_obs["cell_type"] = tiny_obs["cell_type"].cat.remove_unused_categories()
    set_obs(mdata, tiny_obs)

    provenance = json.loads(reapseq.uns["provenance"])
    provenance["scmodtt"]["processing"] = (
        f"Subset of scmodtt's reapseq_pbmc for unit tests: {TINY_CELLS_PER_TYPE} cells of each of "
        f"{TINY_CELL_TYPES}, split evenly over both samples (numpy default_rng({SEED})); "
        f"{len(genes)} genes: the genes of the ADT targets and of the labelling markers that are "
        "detected in these cells, then the highest normalized dispersion among genes detected in "
        f">= {TINY_MIN_DETECTION:.0%} of these cells; all ADTs."
    )
    set_uns(mdata, provenance, REAPSEQ_LICENSE, REAPSEQ_CITATION)
    return mdata


def write_gene_sets() -> list[Path]:
    out = OUT_DIR / "genesets"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for target, source in GENE_SET_SOURCES.items():
        path = out / target
        # mtime=0 and no file name in the header: the same input gives the same bytes.
        with open(SHARED_DATA / "genesets" / source, "rb") as src, open(path, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
                shutil.copyfileobj(src, gz)
        paths.append(path)
    return paths


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    mudata.set_options(pull_on_update=False)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    reapseq = build_reapseq()
    write(reapseq, "reapseq_pbmc.h5mu")
    write(build_tiny(reapseq), "tiny_cite.h5mu")
    write(build_bmmc(), "bmmc_cite.h5mu")
    write_gene_sets()

    print(f"reapseq_pbmc: {reapseq.n_obs} cells, {reapseq['rna'].n_vars} genes")
    print(reapseq.obs["cell_type"].value_counts(sort=False).to_string())
    total = 0
    for path in sorted(OUT_DIR.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            print(f"{path.relative_to(REPO_ROOT)}: {path.stat().st_size / 1e6:.2f} MB")
    print(f"total: {total / 1e6:.2f} MB (budget {SIZE_BUDGET / 1e6:.2f} MB)")
    if total > SIZE_BUDGET:
        raise SystemExit("shipped data exceed the size budget")


if __name__ == "__main__":
    main()

"""Derive cell-type labels for the REAP-seq PBMC set (Peterson et al. 2017), which has none.

The procedure is deterministic (every seed fixed, exact nearest neighbours) and rule-based, so a
rerun reproduces the labels shipped in ``scmodtt/data/reapseq_pbmc.h5mu``:

1. QC. A cell passes with >= 200 detected genes and <= 10% mitochondrial counts. Failing cells are
   kept in the data set with the label ``low_quality`` and take no part in steps 2-4.
2. Joint RNA + ADT embedding. RNA: genes detected in >= 10 cells, log1p of counts per 10^4,
   2,000 highly variable genes (Seurat flavour, per sample), scaled, 30 principal components.
   ADT: per-cell CLR of the whole panel, isotype controls and the ``Blank`` tag dropped, scaled,
   15 principal components. Each block is divided by the square root of its total variance so the
   two modalities weigh the same, then the blocks are concatenated.
3. Exact 20-nearest-neighbour graph (scikit-learn) on the joint embedding; Leiden clustering
   (leidenalg, resolution 1.5, seed 0).
4. Names from rules on cluster means of per-cell marker z-scores (RNA: log-normalized; ADT: CLR;
   each marker z-scored over QC-passing cells). A marker panel's score is the mean z of its
   markers. The gates (see :func:`name_cluster`) are applied to every cluster in the same order;
   no cluster id is named by hand.

Run ``python scripts/derive_reapseq_labels.py`` to print the cluster table, check the labels'
stability across Leiden resolutions and draw the figures in ``docs/figures/``.
``scripts/make_datasets.py`` imports :func:`derive_labels` to store the labels in the shipped file.
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from scmodtt._constants import RNA_TARGET_SUM  # noqa: E402
from scmodtt._normalization import clr, log1p_normalize  # noqa: E402

SOURCE = Path("/work/shared/data/peterson2017_reapseq_pbmc.h5mu")
FIGURE_DIR = REPO_ROOT / "docs" / "figures"

#: One-paragraph summary stored with the labels in the shipped file.
PROCEDURE_SUMMARY = (
    "QC: >= 200 detected genes and <= 10% mitochondrial counts, failing cells labelled "
    "'low_quality'. Joint embedding of QC-passing cells: 30 PCs of 2,000 Seurat-flavour HVGs of "
    "log1p(counts per 10^4) (genes detected in >= 10 cells) + 15 PCs of per-cell CLR ADTs "
    "(controls dropped), each block scaled to unit total variance. Exact 20-NN graph, Leiden "
    "(leidenalg, resolution 1.5, seed 0). Clusters named by fixed gates on cluster means of "
    "per-cell marker z-scores (RNA log-normalized, ADT CLR); clusters < 15 cells 'ambiguous'; "
    "clusters where >= 25% of cells co-detect RNA markers of two lineages 'doublet-like'."
)
SEED = 0
MIN_CELLS_PER_GENE = 10
MIN_GENES_PER_CELL = 200
MAX_PCT_MITO = 10.0
N_TOP_GENES = 2000
N_RNA_PCS = 30
N_ADT_PCS = 15
N_NEIGHBORS = 20
LEIDEN_RESOLUTION = 1.5
#: Resolutions at which the same rules are rerun to check that the labels are stable.
CHECK_RESOLUTIONS = (1.0, 2.0)

LOW_QUALITY = "low_quality"
AMBIGUOUS = "ambiguous"
DOUBLET_LIKE = "doublet-like"
#: Clusters smaller than this are too small to name with confidence.
MIN_CLUSTER_CELLS = 15
#: A cluster in which this fraction of cells co-detects RNA markers of two lineages is
#: doublet-like. In clusters of one lineage the fraction is <= 0.12 in this data set.
MAX_CO_DETECTION = 0.25

#: Marker panels: (modality, target). ADT targets are antibody names without the oligo-barcode
#: suffix; duplicated tags of one target are averaged. The panel has no CD16, CD11c or CD123
#: antibody, so monocyte subsets and dendritic cells rely on RNA markers.
MARKER_PANELS: dict[str, list[tuple[str, str]]] = {
    "T": [("prot", "CD3"), ("rna", "CD3E"), ("rna", "CD3D")],
    "CD4": [("prot", "CD4")],
    "CD8": [("prot", "CD8"), ("prot", "CD8a"), ("rna", "CD8A"), ("rna", "CD8B")],
    "naive": [("prot", "CD45RA"), ("prot", "CD197"), ("rna", "CCR7"), ("rna", "LEF1")],
    "memory": [("prot", "CD45RO"), ("rna", "S100A4")],
    "cytotoxic": [("rna", "NKG7"), ("rna", "GNLY"), ("rna", "GZMH"), ("rna", "GZMK")],
    "NK": [("prot", "CD56"), ("prot", "CD335"), ("prot", "CD158E1"), ("rna", "GNLY")],
    "B": [("prot", "CD19"), ("prot", "CD20"), ("rna", "MS4A1"), ("rna", "CD79A")],
    "plasmablast": [("rna", "IGJ"), ("rna", "MZB1"), ("rna", "TNFRSF17")],
    "CD14 mono": [
        ("prot", "CD14"),
        ("prot", "CD33"),
        ("prot", "CD11b"),
        ("rna", "CD14"),
        ("rna", "LYZ"),
        ("rna", "S100A8"),
    ],
    "CD16 mono": [("rna", "FCGR3A"), ("rna", "MS4A7")],
    "cDC": [("rna", "FCER1A"), ("rna", "CLEC10A"), ("rna", "CD1C")],
    "pDC": [("rna", "LILRA4"), ("rna", "CLEC4C"), ("rna", "IL3RA")],
    "platelet": [("rna", "PPBP"), ("rna", "PF4")],
}

#: RNA markers per lineage for the doublet check: a cell co-detects two lineages when it has a
#: count for a marker of each. Counts, not z-scores, because a doublet shows up as co-detection.
LINEAGE_DETECTION_GENES = {
    "T": ["CD3D", "CD3E"],
    "myeloid": ["LYZ", "S100A8"],
    "B": ["MS4A1", "CD79A"],
}

#: Gate thresholds, in units of the per-cell standard deviation of each marker.
GATES = {
    "platelet": 2.0,
    "pDC": 2.0,
    "plasmablast": 2.0,
    "cDC": 1.5,
    "B": 1.0,
    "CD16 mono": 1.0,
    "CD14 mono": 0.75,
    "T": 0.3,
    "NK": 1.0,
    "cytotoxic": 0.5,
}

#: Label order used for categories and figures.
CELL_TYPE_ORDER = [
    "CD4 naive T",
    "CD4 memory T",
    "CD8 naive T",
    "CD8 effector T",
    "NK",
    "B",
    "plasmablast",
    "CD14 monocytes",
    "CD16 monocytes",
    "cDC",
    "pDC",
    "platelets",
    DOUBLET_LIKE,
    AMBIGUOUS,
    LOW_QUALITY,
]

#: Per-cell ADT checks of the cluster names: (cell types, contrasting cell types, what is checked,
#: test on ADT CLR by target). Counts per antibody are low (median ~100-700 per cell), so single
#: cells are noisy; the contrast shows how often the test holds where it should not.
PER_CELL_CHECKS = [
    (
        ["CD4 naive T", "CD4 memory T"],
        ["CD8 naive T", "CD8 effector T"],
        "CD4 > CD8",
        lambda adt: adt["CD4"] > adt["CD8"],
    ),
    (
        ["CD8 naive T", "CD8 effector T"],
        ["CD4 naive T", "CD4 memory T"],
        "CD8 > CD4",
        lambda adt: adt["CD8"] > adt["CD4"],
    ),
    (
        ["CD4 naive T"],
        ["CD4 memory T"],
        "CD45RA > CD45RO",
        lambda adt: adt["CD45RA"] > adt["CD45RO"],
    ),
    (
        ["CD4 memory T"],
        ["CD4 naive T"],
        "CD45RO > CD45RA",
        lambda adt: adt["CD45RO"] > adt["CD45RA"],
    ),
    (
        ["NK"],
        ["CD8 effector T"],
        "max(CD56, CD335, CD158E1) > CD3",
        lambda adt: adt[["CD56", "CD335", "CD158E1"]].max(axis=1) > adt["CD3"],
    ),
    (
        ["B"],
        ["CD4 naive T", "CD14 monocytes"],
        "CD19 > max(CD3, CD14)",
        lambda adt: adt["CD19"] > adt[["CD3", "CD14"]].max(axis=1),
    ),
    (
        ["CD14 monocytes"],
        ["CD4 naive T", "B"],
        "CD14 > max(CD3, CD19)",
        lambda adt: adt["CD14"] > adt[["CD3", "CD19"]].max(axis=1),
    ),
]

_BARCODE_SUFFIX = re.compile(r"_[ACGT]{8}$")


def antibody_target(var_name: str) -> str:
    """Antibody target without the REAP-seq oligo-barcode suffix (``CD4_GTCCAGGC`` -> ``CD4``)."""
    return _BARCODE_SUFFIX.sub("", var_name)


def passes_qc(rna: ad.AnnData) -> np.ndarray:
    """Cells with enough detected genes and a modest mitochondrial fraction."""
    counts = rna.X
    n_genes = np.asarray((counts > 0).sum(axis=1)).ravel()
    library = np.asarray(counts.sum(axis=1)).ravel()
    is_mito = rna.var_names.str.startswith("MT-")
    mito = np.asarray(counts[:, is_mito].sum(axis=1)).ravel()
    pct_mito = 100 * mito / np.maximum(library, 1)
    return (n_genes >= MIN_GENES_PER_CELL) & (pct_mito <= MAX_PCT_MITO)


def joint_embedding(rna: ad.AnnData, prot: ad.AnnData) -> np.ndarray:
    """Concatenated RNA and ADT principal components, each block scaled to unit total variance."""
    rna_norm = ad.AnnData(
        sp.csr_matrix(log1p_normalize(rna.X).astype(np.float32)),
        obs=rna.obs[["sample"]].copy(),
        var=pd.DataFrame(index=rna.var_names),
    )
    sc.pp.highly_variable_genes(
        rna_norm, n_top_genes=N_TOP_GENES, flavor="seurat", batch_key="sample"
    )
    rna_hvg = rna_norm[:, rna_norm.var["highly_variable"]].copy()
    sc.pp.scale(rna_hvg, max_value=10)
    sc.pp.pca(rna_hvg, n_comps=N_RNA_PCS, svd_solver="arpack", random_state=SEED)

    # Isotype controls and the Blank tag measure background binding, not cell identity.
    is_signal = ~prot.var["isotype_control"].to_numpy() & (prot.var_names != "Blank")
    prot_clr = ad.AnnData(clr(prot.X)[:, is_signal].astype(np.float32))
    sc.pp.scale(prot_clr, max_value=10)
    sc.pp.pca(prot_clr, n_comps=N_ADT_PCS, svd_solver="arpack", random_state=SEED)

    blocks = [rna_hvg.obsm["X_pca"], prot_clr.obsm["X_pca"]]
    return np.hstack([block / np.sqrt(block.var(axis=0).sum()) for block in blocks])


def log1p_genes(rna: ad.AnnData, genes: list[str]) -> np.ndarray:
    """log1p of counts per 10^4 for ``genes``; the library size counts every gene of ``rna``."""
    library = np.asarray(rna.X.sum(axis=1)).ravel()[:, None]
    counts = rna[:, genes].X.toarray().astype(np.float64)
    return np.log1p(counts / np.maximum(library, 1) * RNA_TARGET_SUM)


def marker_values(rna: ad.AnnData, prot: ad.AnnData) -> pd.DataFrame:
    """Per-cell marker values keyed by ``(modality, target)``: log-normalized RNA and ADT CLR."""
    markers = sorted({marker for panel in MARKER_PANELS.values() for marker in panel})
    genes = [target for mod, target in markers if mod == "rna"]
    columns = dict(zip([("rna", gene) for gene in genes], log1p_genes(rna, genes).T, strict=True))
    prot_clr = clr(prot.X)
    antibody_targets = np.array([antibody_target(name) for name in prot.var_names])
    for target in [target for mod, target in markers if mod == "prot"]:
        tags = np.flatnonzero(antibody_targets == target)
        if tags.size == 0:
            raise KeyError(f"No antibody for target {target!r} in the REAP-seq panel.")
        columns[("prot", target)] = prot_clr[:, tags].mean(axis=1)
    return pd.DataFrame(columns, index=rna.obs_names)


def co_detection(rna: ad.AnnData) -> pd.DataFrame:
    """Per cell, whether it has counts for RNA markers of each pair of lineages."""
    detected = {
        lineage: np.asarray((rna[:, genes].X > 0).sum(axis=1)).ravel() > 0
        for lineage, genes in LINEAGE_DETECTION_GENES.items()
    }
    lineages = list(detected)
    return pd.DataFrame(
        {
            f"{a}+{b}": detected[a] & detected[b]
            for i, a in enumerate(lineages)
            for b in lineages[i + 1 :]
        },
        index=rna.obs_names,
    )


@dataclass
class ClusterEvidence:
    """Cluster-level numbers the naming rules read."""

    size: int
    scores: pd.Series  # mean z per marker panel
    co_detection: pd.Series  # fraction of cells co-detecting each lineage pair


def name_cluster(evidence: ClusterEvidence) -> tuple[str, str]:
    """Cell-type name of one cluster and the rule that gave it.

    Gates are tried in a fixed order, most specific populations first, like a flow-cytometry
    gating tree: rare populations with unique markers (platelets, pDC, plasmablasts, cDC) before
    the broad lineages, and NK only for CD3-negative clusters.
    """
    s = evidence.scores
    if evidence.size < MIN_CLUSTER_CELLS:
        return AMBIGUOUS, f"fewer than {MIN_CLUSTER_CELLS} cells"
    worst_pair = evidence.co_detection.idxmax()
    if evidence.co_detection[worst_pair] >= MAX_CO_DETECTION:
        fraction = evidence.co_detection[worst_pair]
        return DOUBLET_LIKE, f"{fraction:.0%} of cells co-detect {worst_pair} RNA markers"
    for panel, name in [
        ("platelet", "platelets"),
        ("pDC", "pDC"),
        ("plasmablast", "plasmablast"),
        ("cDC", "cDC"),
        ("B", "B"),
    ]:
        if s[panel] >= GATES[panel]:
            return name, f"{panel} score {s[panel]:.2f} >= {GATES[panel]}"
    if s["CD16 mono"] >= GATES["CD16 mono"] and s["CD16 mono"] > s["CD14 mono"]:
        return "CD16 monocytes", f"CD16 mono score {s['CD16 mono']:.2f} > CD14 mono score"
    if s["CD14 mono"] >= GATES["CD14 mono"]:
        return "CD14 monocytes", f"CD14 mono score {s['CD14 mono']:.2f} >= {GATES['CD14 mono']}"
    if s["T"] >= GATES["T"]:
        if s["CD8"] > s["CD4"]:
            if s["naive"] > s["memory"] and s["cytotoxic"] < GATES["cytotoxic"]:
                return "CD8 naive T", "T, CD8 > CD4, naive > memory, not cytotoxic"
            return "CD8 effector T", "T, CD8 > CD4, memory >= naive or cytotoxic"
        if s["naive"] > s["memory"]:
            return "CD4 naive T", "T, CD4 >= CD8, naive > memory"
        return "CD4 memory T", "T, CD4 >= CD8, memory >= naive"
    if s["NK"] >= GATES["NK"] and s["T"] < 0:
        return "NK", f"NK score {s['NK']:.2f} >= {GATES['NK']} and T score < 0"
    return AMBIGUOUS, "no gate passed"


def cluster_table(
    clusters: pd.Series, markers: pd.DataFrame, co_detected: pd.DataFrame
) -> pd.DataFrame:
    """One row per cluster: size, panel scores, co-detection fractions, name and rule."""
    z = (markers - markers.mean()) / markers.std()
    panel_z = pd.DataFrame(
        {panel: z[members].mean(axis=1) for panel, members in MARKER_PANELS.items()}
    )
    panel_scores = panel_z.groupby(clusters.to_numpy()).mean()
    co_fractions = co_detected.groupby(clusters.to_numpy()).mean()
    sizes = clusters.value_counts()
    rows = []
    for cluster in panel_scores.index:
        evidence = ClusterEvidence(
            size=int(sizes[cluster]),
            scores=panel_scores.loc[cluster],
            co_detection=co_fractions.loc[cluster],
        )
        name, rule = name_cluster(evidence)
        rows.append({"cluster": cluster, "n_cells": evidence.size, "cell_type": name, "rule": rule})
    table = pd.DataFrame(rows).set_index("cluster")
    return table.join(panel_scores.round(2)).join(co_fractions.round(2))


@dataclass
class DerivedLabels:
    """Result of :func:`derive_labels`."""

    obs: pd.DataFrame  # all cells: passes_qc, leiden, cell_type
    clusters: pd.DataFrame  # one row per Leiden cluster (see cluster_table)
    graph: ad.AnnData  # QC-passing cells with the joint embedding and neighbour graph
    markers: pd.DataFrame  # per-cell marker values of QC-passing cells


def label_clusters(
    graph: ad.AnnData, markers: pd.DataFrame, co_detected: pd.DataFrame, resolution: float
) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """Leiden clusters at ``resolution`` and their rule-based names."""
    key = f"leiden_{resolution}"
    sc.tl.leiden(graph, resolution=resolution, flavor="leidenalg", random_state=SEED, key_added=key)
    clusters = graph.obs[key].astype(str)
    table = cluster_table(clusters, markers, co_detected)
    names = clusters.map(table["cell_type"])
    return clusters, names, table


def derive_labels(mdata: mudata.MuData, resolution: float = LEIDEN_RESOLUTION) -> DerivedLabels:
    """Run the whole procedure of this module on the REAP-seq MuData (raw counts)."""
    rna, prot = mdata["rna"], mdata["prot"]
    qc = passes_qc(rna)
    detected_in = np.asarray((rna.X > 0).sum(axis=0)).ravel()
    rna = rna[qc, detected_in >= MIN_CELLS_PER_GENE].copy()
    prot = prot[qc].copy()

    graph = ad.AnnData(np.zeros((rna.n_obs, 0), dtype=np.float32), obs=rna.obs[["sample"]].copy())
    graph.obsm["X_joint"] = joint_embedding(rna, prot)
    sc.pp.neighbors(
        graph,
        use_rep="X_joint",
        n_neighbors=N_NEIGHBORS,
        transformer="sklearn",  # exact search: no approximate-neighbour randomness
        random_state=SEED,
    )
    markers = marker_values(rna, prot)
    co_detected = co_detection(rna)
    clusters, names, table = label_clusters(graph, markers, co_detected, resolution)
    graph.obs["leiden"] = clusters
    graph.obs["cell_type"] = names

    obs = pd.DataFrame(index=mdata.obs_names)
    obs["passes_qc"] = qc
    obs["leiden"] = "none"
    obs.loc[graph.obs_names, "leiden"] = clusters.to_numpy()
    obs["cell_type"] = LOW_QUALITY
    obs.loc[graph.obs_names, "cell_type"] = names.to_numpy()
    obs["cell_type"] = pd.Categorical(
        obs["cell_type"],
        categories=[name for name in CELL_TYPE_ORDER if name in set(obs["cell_type"])],
    )
    return DerivedLabels(obs=obs, clusters=table, graph=graph, markers=markers)


def plot_figures(mdata: mudata.MuData, derived: DerivedLabels, out_dir: Path) -> None:
    """ADT and RNA marker dotplots by cell type and a UMAP of the joint graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    cell_type = derived.obs["cell_type"]

    # ADT dotplot on the original antibody names (duplicated tags shown side by side).
    prot = mdata["prot"]
    prot_clr = ad.AnnData(clr(prot.X), obs=pd.DataFrame({"cell_type": cell_type}))
    prot_clr.var_names = prot.var_names
    adt_groups = {
        "T": ["CD3"],
        "CD4/CD8": ["CD4", "CD8", "CD8a"],
        "naive/memory": ["CD45RA", "CD197", "CD45RO", "CD127"],
        "NK": ["CD56", "CD335", "CD158E1"],
        "B": ["CD19", "CD20"],
        "myeloid": ["CD14", "CD33", "CD11b", "HLA-DRA"],
        "control": ["Control_Mouse_IgG2b", "Mouse_IgG1", "Control_Rat_IgG1"],
    }
    targets = pd.Series([antibody_target(name) for name in prot.var_names], index=prot.var_names)
    var_groups = {
        group: [name for target in members for name in targets.index[targets == target]]
        for group, members in adt_groups.items()
    }
    dotplot = sc.pl.dotplot(
        prot_clr,
        var_groups,
        groupby="cell_type",
        standard_scale="var",
        var_group_rotation=0,  # vertical group names would run into the title
        colorbar_title="mean CLR\n(scaled per antibody)",
        size_title="fraction of cells\nwith CLR > 0",
        title="REAP-seq PBMC: ADT markers (per-cell CLR) by derived cell type",
        show=False,
        return_fig=True,
    )
    dotplot.savefig(out_dir / "reapseq_cell_types_dotplot.png", dpi=110, bbox_inches="tight")
    plt.close("all")

    rna = mdata["rna"]  # library sizes over all genes, as in derive_labels up to the rare genes
    rna_groups = {
        "T": ["CD3E", "IL7R", "CCR7", "LEF1", "CD8A", "CD8B"],
        "cytotoxic": ["GZMK", "GZMH", "NKG7", "GNLY"],
        "B": ["MS4A1", "CD79A", "IGJ", "MZB1"],
        "mono": ["CD14", "LYZ", "S100A8", "FCGR3A", "MS4A7"],
        "DC": ["FCER1A", "CLEC10A", "CD1C", "LILRA4", "CLEC4C", "IL3RA"],
        "platelet": ["PPBP", "PF4"],
    }
    genes = [gene for members in rna_groups.values() for gene in members]
    rna_norm = ad.AnnData(
        log1p_genes(rna, genes),
        obs=pd.DataFrame({"cell_type": cell_type}),
        var=pd.DataFrame(index=genes),
    )
    dotplot = sc.pl.dotplot(
        rna_norm,
        rna_groups,
        groupby="cell_type",
        standard_scale="var",
        var_group_rotation=0,  # vertical group names would run into the title
        colorbar_title="mean log1p(norm.)\n(scaled per gene)",
        title="REAP-seq PBMC: RNA markers by derived cell type",
        show=False,
        return_fig=True,
    )
    dotplot.savefig(out_dir / "reapseq_rna_markers_dotplot.png", dpi=110, bbox_inches="tight")
    plt.close("all")

    graph = derived.graph
    sc.tl.umap(graph, random_state=SEED)
    graph.obs["cell_type"] = pd.Categorical(
        graph.obs["cell_type"],
        categories=[c for c in cell_type.cat.categories if c in set(graph.obs["cell_type"])],
    )
    graph.obs["leiden"] = pd.Categorical(
        graph.obs["leiden"], categories=sorted(set(graph.obs["leiden"]), key=int)
    )
    fig = sc.pl.umap(
        graph,
        color=["cell_type", "leiden", "sample"],
        legend_loc="right margin",
        title=["derived cell type", f"Leiden cluster (resolution {LEIDEN_RESOLUTION})", "sample"],
        ncols=2,
        wspace=0.5,
        size=10,
        show=False,
        return_fig=True,
    )
    fig.savefig(out_dir / "reapseq_cell_types_umap.png", dpi=100, bbox_inches="tight")
    plt.close("all")


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    mudata.set_options(pull_on_update=False)
    mdata = mudata.read_h5mu(SOURCE)
    derived = derive_labels(mdata)
    obs = derived.obs
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    print(f"QC: {int(obs['passes_qc'].sum())} of {len(obs)} cells pass")
    print(derived.clusters.sort_values("cell_type").to_string())
    print(obs["cell_type"].value_counts(sort=False).to_string())
    print(pd.crosstab(obs["cell_type"], mdata.obs["sample"]).to_string())

    # Stability: the same rules on other Leiden resolutions of the same graph.
    co_detected = co_detection(mdata["rna"][derived.graph.obs_names])
    for resolution in CHECK_RESOLUTIONS:
        _, names, _ = label_clusters(derived.graph, derived.markers, co_detected, resolution)
        same = (names.to_numpy() == derived.graph.obs["cell_type"].to_numpy()).mean()
        print(f"resolution {resolution}: {same:.1%} of QC-passing cells get the same label")
        print(pd.crosstab(derived.graph.obs["cell_type"], names).to_string())

    # Per-cell checks: does each cell's own ADT profile agree with its cluster's name?
    adt = derived.markers["prot"]
    labels = derived.graph.obs["cell_type"]
    for cell_types, contrast, description, agrees in PER_CELL_CHECKS:
        holds = agrees(adt)
        in_types, in_contrast = labels.isin(cell_types), labels.isin(contrast)
        print(
            f"ADT {description}: {holds[in_types].mean():.1%} of {' + '.join(cell_types)} cells, "
            f"{holds[in_contrast].mean():.1%} of {' + '.join(contrast)} cells"
        )

    plot_figures(mdata, derived, FIGURE_DIR)


if __name__ == "__main__":
    main()

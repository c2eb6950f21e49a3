"""The shipped data sets and gene-set collections: contents, independence of loads, size."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mudata
import numpy as np
import pytest
import scipy.sparse as sp

from scmodtt import datasets
from scmodtt._gmt import read_gmt
from scmodtt.pp import rna_protein_pairs

# CI clones the repository with shared/ beside it.
SHARED_GENESETS = Path(__file__).parents[1].parent / "shared" / "data" / "genesets"
DATA_DIR = Path(datasets.__file__).resolve().parents[1] / "data"
SIZE_BUDGET = 25_000_000  # bytes, for everything under src/scmodtt/data

REAPSEQ_CELL_TYPES = {
    "CD4 naive T": 1341,
    "CD4 memory T": 882,
    "CD8 naive T": 525,
    "CD8 effector T": 518,
    "NK": 386,
    "B": 607,
    "plasmablast": 17,
    "CD14 monocytes": 1983,
    "CD16 monocytes": 508,
    "cDC": 163,
    "pDC": 56,
    "platelets": 27,
    "doublet-like": 401,
    "low_quality": 74,
}

# loader, cells, genes, antibodies, isotype controls, label types, batch key, batches, citation
EXPECTED = {
    "reapseq_pbmc": (7488, 11753, 48, 4, len(REAPSEQ_CELL_TYPES), "sample", 2, "Peterson"),
    "bmmc_cite": (600, 1000, 134, 0, 41, "batch", 2, "Luecken"),
    "tiny_cite": (300, 300, 48, 4, 5, "sample", 2, "Peterson"),
}


@pytest.fixture(scope="module")
def loaded() -> dict[str, mudata.MuData]:
    """Each data set loaded once for the read-only tests."""
    return {name: getattr(datasets, name)() for name in EXPECTED}


@pytest.mark.parametrize("name", EXPECTED)
def test_modalities_hold_raw_integer_counts(loaded, name):
    mdata = loaded[name]
    n_cells, n_genes, n_proteins, n_controls, *_ = EXPECTED[name]
    assert set(mdata.mod) == {"rna", "prot"}
    assert mdata.n_obs == n_cells
    assert mdata["rna"].shape == (n_cells, n_genes)
    assert mdata["prot"].shape == (n_cells, n_proteins)
    for modality in mdata.mod.values():
        assert sp.issparse(modality.X) and modality.X.format == "csr"
        assert np.issubdtype(modality.X.dtype, np.integer)
        assert modality.X.data.min() >= 0
        assert modality.X.nnz > 0
        assert modality.var_names.is_unique
    assert mdata["prot"].var["isotype_control"].dtype == bool
    assert int(mdata["prot"].var["isotype_control"].sum()) == n_controls


@pytest.mark.parametrize("name", EXPECTED)
def test_labels_and_batches_are_in_top_level_obs(loaded, name):
    mdata = loaded[name]
    *_, n_types, batch_key, n_batches, _ = EXPECTED[name]
    for key, n_categories in [("cell_type", n_types), (batch_key, n_batches)]:
        assert mdata.obs[key].nunique() == n_categories
        assert mdata.obs[key].notna().all()
        for modality in mdata.mod.values():
            assert (modality.obs[key] == mdata.obs[key]).all()
    assert list(mdata.obs_names) == list(mdata["rna"].obs_names) == list(mdata["prot"].obs_names)


@pytest.mark.parametrize("name", EXPECTED)
def test_provenance_licence_and_citation(loaded, name):
    mdata = loaded[name]
    provenance = json.loads(mdata.uns["provenance"])
    assert provenance["repo"] and provenance["commit"]
    assert provenance["scmodtt"]["built_by"] == "scripts/make_datasets.py"
    assert "CC BY 4.0" in mdata.uns["license"] or "GEO" in mdata.uns["license"]
    assert EXPECTED[name][-1] in mdata.uns["citation"]
    assert list(mdata.uns["label_columns"]) == ["cell_type"]


def test_reapseq_labels_genes_and_derivation(loaded):
    mdata = loaded["reapseq_pbmc"]
    counts = mdata.obs["cell_type"].value_counts().to_dict()
    assert counts == REAPSEQ_CELL_TYPES
    assert mdata.obs["sample"].value_counts().to_dict() == {"PBMC_3": 4330, "PBMC_2": 3158}
    # Cells failing QC are kept and labelled, not dropped.
    assert (mdata.obs["cell_type"] == "low_quality").equals(~mdata.obs["passes_qc"])
    detected_in = np.asarray((mdata["rna"].X > 0).sum(axis=0)).ravel()
    assert detected_in.min() >= 10
    # Original antibody names, barcode suffix and duplicated targets included.
    assert {"CD4_GTCCAGGC", "CD4_CACGATTC", "CD8_GTATCGAG", "CD8_CAATCCCT"} <= set(
        mdata["prot"].var_names
    )
    derivation = mdata.uns["cell_type_derivation"]
    assert derivation["parameters"]["seed"] == 0
    clusters = derivation["clusters"]
    assert clusters["n_cells"].sum() == int(mdata.obs["passes_qc"].sum())


def test_reapseq_labels_agree_with_adt_markers(loaded):
    """Cell types differ in their own ADT markers the way their names say."""
    mdata = loaded["reapseq_pbmc"]
    prot = mdata["prot"]
    logged = np.log1p(prot.X.toarray().astype(float))
    clr = logged - logged.mean(axis=1, keepdims=True)

    def mean_clr(cell_type, *antibodies):
        cells = (mdata.obs["cell_type"] == cell_type).to_numpy()
        columns = [prot.var_names.get_loc(name) for name in antibodies]
        return clr[np.ix_(cells, columns)].mean()

    cd4, cd8 = ("CD4_GTCCAGGC", "CD4_CACGATTC"), ("CD8_GTATCGAG", "CD8_CAATCCCT")
    assert mean_clr("CD4 naive T", *cd4) > mean_clr("CD8 naive T", *cd4) + 1
    assert mean_clr("CD8 naive T", *cd8) > mean_clr("CD4 naive T", *cd8) + 1
    assert mean_clr("CD4 naive T", "CD45RA_GTGATAGT") > mean_clr("CD4 memory T", "CD45RA_GTGATAGT")
    assert mean_clr("CD4 memory T", "CD45RO_TGATATCG") > mean_clr("CD4 naive T", "CD45RO_TGATATCG")
    for cell_type, marker in [
        ("B", "CD19_CTATACGC"),
        ("NK", "CD56_TACATAAG"),
        ("CD14 monocytes", "CD14_AATTGAAC"),
        ("CD4 naive T", "CD3_AGGATCGA"),
    ]:
        others = [t for t in ("B", "NK", "CD14 monocytes", "CD4 naive T") if t != cell_type]
        assert mean_clr(cell_type, marker) > max(mean_clr(other, marker) for other in others)


def test_tiny_set_is_balanced_small_and_has_paired_genes(loaded):
    mdata = loaded["tiny_cite"]
    per_type = mdata.obs.groupby("cell_type", observed=True).size()
    assert len(per_type) >= 3 and per_type.min() >= 40
    per_type_and_sample = mdata.obs.groupby(["cell_type", "sample"], observed=True).size()
    assert per_type_and_sample.min() >= 20
    assert {"CD3E", "CD4", "CD8A", "MS4A1", "CD14", "PTPRC", "HLA-DRA", "IL7R", "CCR7"} <= set(
        mdata["rna"].var_names
    )
    assert np.asarray((mdata["rna"].X > 0).sum(axis=0)).min() > 0  # no all-zero genes
    # A subset of reapseq_pbmc: same counts for the same cells and features.
    reapseq = loaded["reapseq_pbmc"]
    cells, genes = mdata.obs_names, mdata["rna"].var_names
    assert (reapseq["rna"][cells, genes].X != mdata["rna"].X).nnz == 0
    assert (reapseq["prot"][cells].X != mdata["prot"].X).nnz == 0
    assert (reapseq.obs.loc[cells, "cell_type"].astype(str) == mdata.obs["cell_type"]).all()
    assert datasets.path("tiny_cite").stat().st_size < 1_000_000


@pytest.mark.parametrize("name", ["tiny_cite", "bmmc_cite", "pbmc_panel"])
def test_each_load_is_an_independent_copy(name):
    loader = getattr(datasets, name)
    first = loader()
    original_total = first["rna"].X.sum()
    original_labels = first.obs["cell_type"].copy()
    first["rna"].X.data[:] = 0
    first.obs["cell_type"] = "mutated"
    first.uns["provenance"] = "mutated"
    first["prot"].var["isotype_control"] = True

    second = loader()
    assert second["rna"].X.sum() == original_total
    assert second.obs["cell_type"].equals(original_labels)
    assert json.loads(second.uns["provenance"])["repo"]
    assert not second["prot"].var["isotype_control"].all()


def test_loading_emits_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datasets.tiny_cite()
        datasets.bmmc_cite()  # its top-level var_names are not unique by design


def test_shipped_data_fit_the_size_budget():
    files = [path for path in DATA_DIR.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {
        "reapseq_pbmc.h5mu",
        "bmmc_cite.h5mu",
        "tiny_cite.h5mu",
        "hallmark.gmt.gz",
        "reactome.gmt.gz",
        "go_bp_2021.gmt.gz",
    }
    assert sum(path.stat().st_size for path in files) <= SIZE_BUDGET


@pytest.mark.parametrize(
    ("name", "n_sets", "shared_file"),
    [
        ("hallmark", 50, "h.all.v7.0.symbols.gmt"),
        ("reactome", 2504, "ReactomePathways.gmt"),
        ("go_bp", 6036, "enrichr.GO_Biological_Process_2021.gmt"),
    ],
)
def test_gene_sets(name, n_sets, shared_file):
    sets = datasets.gene_sets(name)
    assert len(sets) == n_sets
    assert all(genes and all(isinstance(gene, str) for gene in genes) for genes in sets.values())
    if name == "hallmark":
        assert "HALLMARK_HYPOXIA" in sets and "VEGFA" in sets["HALLMARK_HYPOXIA"]
    if (SHARED_GENESETS / shared_file).is_file():
        assert sets == read_gmt(SHARED_GENESETS / shared_file)
    # A fresh dictionary every call.
    sets.clear()
    assert len(datasets.gene_sets(name)) == n_sets


def test_unknown_names_raise_with_the_valid_names():
    with pytest.raises(ValueError, match="'hallmark', 'reactome', 'go_bp'"):
        datasets.gene_sets("kegg")
    with pytest.raises(ValueError, match="'reapseq_pbmc'.*'bmmc_cite'.*'tiny_cite'"):
        datasets.path("pbmc10k")


def test_path_points_at_shipped_files():
    for name in [*EXPECTED, "pbmc_panel", "hallmark", "reactome", "go_bp"]:
        file_path = datasets.path(name)
        assert file_path.is_absolute() and file_path.is_file()
        assert file_path.parent in (DATA_DIR, DATA_DIR / "genesets")


# ---------------------------------------------------------------------- the PBMC panel
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
PANEL_TARGETS = {  # panel name: (gene, REAP-seq, ECCITE-seq, PBMC5k antibody)
    "CD3": ("CD3E", "CD3_AGGATCGA", "CD3", "CD3_TotalSeqB"),
    "CD4": ("CD4", "CD4_GTCCAGGC", "CD4", "CD4_TotalSeqB"),
    "CD8": ("CD8A", "CD8_CAATCCCT", "CD8", "CD8a_TotalSeqB"),
    "CD45RA": ("PTPRC", "CD45RA_GTGATAGT", "CD45RA", "CD45RA_TotalSeqB"),
    "CD45RO": ("PTPRC", "CD45RO_TGATATCG", "CD45RO", "CD45RO_TotalSeqB"),
    "CD127": ("IL7R", "CD127_TGGGAGCT", "IL7Ralpha (CD127)", "CD127_TotalSeqB"),
    "CD197": ("CCR7", "CD197_ACGCTTGG", "CCR7", "CD197_TotalSeqB"),
    "CD279": ("PDCD1", "CD279_GAACCCGG", "PD-1 (CD279)", "PD-1_TotalSeqB"),
    "HLA-DRA": ("HLA-DRA", "HLA-DRA_TAGACGAC", "MHCII (HLA-DR)", "HLA-DR_TotalSeqB"),
}


@pytest.fixture(scope="module")
def panel() -> mudata.MuData:
    return datasets.pbmc_panel()


def test_pbmc_panel_loads_from_the_package_alone(monkeypatch):
    read = []
    original = mudata.read_h5mu
    monkeypatch.setattr(mudata, "read_h5mu", lambda path: read.append(Path(path)) or original(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mdata = datasets.pbmc_panel()
    # The shipped ECCITE-seq + PBMC5k file and the shipped REAP-seq file, nothing from shared/.
    assert sorted(path.name for path in read) == ["pbmc_panel.h5mu", "reapseq_pbmc.h5mu"]
    assert all(path.parent == DATA_DIR for path in read)
    assert mdata.n_obs == 8188
    assert datasets.path("pbmc_panel").stat().st_size < 3_500_000


def test_pbmc_panel_shapes_batches_and_labels(panel):
    assert set(panel.mod) == {"rna", "prot"}
    assert panel["rna"].shape == (8188, 10334) and panel["prot"].shape == (8188, 17)
    for modality in panel.mod.values():
        assert modality.X.format == "csr" and modality.X.dtype == np.int32
        assert modality.var_names.is_unique
        for column in ("dataset", "sample", "cell_type"):
            assert (modality.obs[column] == panel.obs[column]).all()
    obs = panel.obs
    assert obs["dataset"].value_counts().to_dict() == {
        "reapseq": 7488,
        "eccite": 500,
        "pbmc5k": 200,
    }
    assert list(obs["dataset"].cat.categories) == ["reapseq", "eccite", "pbmc5k"]
    assert obs.notna().all().all()
    reapseq = datasets.reapseq_pbmc()
    is_reapseq = (obs["dataset"] == "reapseq").to_numpy()
    # REAP-seq keeps its labels and samples; the other two are unlabelled, one sample each.
    assert (obs.loc[is_reapseq, "cell_type"].astype(str) == reapseq.obs["cell_type"]).all()
    assert (obs.loc[is_reapseq, "sample"].astype(str) == reapseq.obs["sample"]).all()
    assert set(obs.loc[~is_reapseq, "cell_type"]) == {"unknown"}
    others = obs.loc[~is_reapseq, ["sample", "dataset"]].astype(str)
    assert (others["sample"] == others["dataset"]).all()
    # Counts unchanged: the REAP-seq block is reapseq_pbmc on the panel's features.
    genes, antibodies = panel["rna"].var_names, panel["prot"].var["antibody_reapseq"]
    assert (panel["rna"][is_reapseq].X != reapseq["rna"][:, genes].X).nnz == 0
    assert (panel["prot"][is_reapseq].X != reapseq["prot"][:, antibodies.to_numpy()].X).nnz == 0
    assert np.asarray(panel["rna"][~is_reapseq].X.sum(axis=1)).min() > 0


def test_pbmc_panel_adts_are_matched_by_target(panel):
    var = panel["prot"].var
    for name, expected in PANEL_TARGETS.items():
        columns = ["gene", "antibody_reapseq", "antibody_eccite", "antibody_pbmc5k"]
        assert tuple(var.loc[name, columns]) == expected, name
    assert not var["isotype_control"].any()
    # Every panel name maps to its gene through the alias table, as the RNA–protein pairs need.
    matched = rna_protein_pairs(panel, min_detection=0.0)
    assert matched["gene"].tolist() == var["gene"].tolist()
    # Duplicated targets: the antibody with the larger total count is kept, the others say why.
    matching = panel.uns["adt_matching"].set_index(["dataset", "antibody"])
    for dataset, kept, dropped in [
        ("reapseq", "CD4_GTCCAGGC", "CD4_CACGATTC"),
        ("reapseq", "CD8_CAATCCCT", "CD8_GTATCGAG"),
        ("reapseq", "CD8_CAATCCCT", "CD8a_ACCCGCAC"),
        ("eccite", "PD-1 (CD279)", "PD1 (CD279)"),
        ("eccite", "PD-L1 (CD274)", "B7-H1 (PD-L1)"),
    ]:
        assert matching.loc[(dataset, kept), "status"] == "kept"
        assert matching.loc[(dataset, dropped), "status"].startswith("duplicate target")
        assert (
            matching.loc[(dataset, kept), "total_count"]
            >= matching.loc[(dataset, dropped), "total_count"]
        )
    # CD45 is measured by REAP-seq and ECCITE-seq but not PBMC5k: not a panel target.
    assert matching.loc[("reapseq", "CD45_ACGAGTAG"), "status"] == "target not in every data set"
    assert matching.loc[("pbmc5k", "CD80_TotalSeqB"), "status"] == "target not in every data set"
    assert matching.loc[("eccite", "IgG1"), "status"] == "isotype control"
    assert (matching["status"] == "kept").groupby(level="dataset").sum().to_dict() == {
        "eccite": 17,
        "pbmc5k": 17,
        "reapseq": 17,
    }


def test_pbmc_panel_provenance_and_sources(panel):
    provenance = json.loads(panel.uns["provenance"])
    assert provenance["scmodtt"]["built_by"] == "scripts/build_pbmc_panel.py"
    assert set(provenance["sources"]) == {"reapseq", "eccite", "pbmc5k"}
    assert provenance["sources"]["eccite"]["repo"] == "SydneyBioX/CiteFuse"
    for author in ("Peterson", "Mimitou", "10x Genomics"):
        assert author in panel.uns["citation"]
    assert "CC BY 4.0" in panel.uns["license"] and "GEO" in panel.uns["license"]
    # With shared/ beside the checkout (CI), the counts are the sources' for the same antibodies.
    for dataset, file in [
        ("eccite", "mimitou2019_eccite_pbmc_ctrl_citefuse.h5mu"),
        ("pbmc5k", "pbmc5k_protein_v3_scvi_test200.h5mu"),
    ]:
        if not (SHARED_DATA / file).is_file():
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot join columns")
            source = mudata.read_h5mu(SHARED_DATA / file)
        cells = (panel.obs["dataset"] == dataset).to_numpy()
        antibodies = panel["prot"].var[f"antibody_{dataset}"].to_numpy()
        names = panel.obs_names[cells]
        assert (panel["prot"][cells].X != source["prot"][names, antibodies].X).nnz == 0
        genes = panel["rna"].var_names
        assert (panel["rna"][cells].X != source["rna"][names, genes].X).nnz == 0

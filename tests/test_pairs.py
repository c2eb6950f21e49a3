"""Tests of scmodtt.pp's RNA–protein pairs: antibody names, the alias table, pairing rules, and the
pairs found on the shared CITE-seq panels."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmodtt.datasets
import scmodtt.pp as pp
from scmodtt.pp._aliases import clean_antibody_name

md.set_options(pull_on_update=False)

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------- aliases and pairs
@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("CD4_GTCCAGGC", "CD4"),
        ("HLA-DRA_TAGACGAC", "HLA-DRA"),
        ("CD3_TotalSeqB", "CD3"),
        ("CD8a-TotalSeqA", "CD8a"),
        ("Hu.CD16", "CD16"),
        ("IL7Ralpha (CD127)", "IL7Ralpha (CD127)"),
    ],
)
def test_clean_antibody_name(raw, cleaned):
    assert clean_antibody_name(raw) == cleaned


def test_alias_table_is_well_formed():
    table = pp.protein_aliases()
    assert {"antibody", "gene", "note"} <= set(table.columns)
    assert table["gene"].str.fullmatch(r"[A-Z0-9][A-Z0-9-]*").all(), "HGNC-style symbols"
    lookup = table.set_index("antibody")["gene"]
    expected = {
        "CD45RA": "PTPRC",
        "CD45RO": "PTPRC",
        "CD45": "PTPRC",
        "CD16": "FCGR3A",
        "CD56": "NCAM1",
        "HLA-DR": "HLA-DRA",
        "CD3": "CD3E",
        "CD8": "CD8A",
        "CD8a": "CD8A",
        "CD11c": "ITGAX",
        "CD127": "IL7R",
        "CD4": "CD4",
        "CD14": "CD14",
        "CD19": "CD19",
        "CD25": "IL2RA",
    }
    assert {name: lookup[name] for name in expected} == expected


def test_pairs_rules_on_small_data():
    genes = ["FCGR3A", "CD3E", "PTPRC", "MS4A1"]
    rna_counts = np.zeros((100, 4), dtype=np.int32)
    rna_counts[:50, 0] = 1  # FCGR3A in 50% of cells
    rna_counts[:10, 1] = 2  # CD3E in 10%
    rna_counts[:, 2] = 3  # PTPRC everywhere
    rna_counts[:1, 3] = 1  # MS4A1 in 1%
    proteins = ["CD16_TotalSeqB", "CD3_TotalSeqB", "CD45_A", "CD45_B", "CD20_TotalSeqB"]
    proteins += ["CD56_TotalSeqB", "Mouse_IgG1_TotalSeqB", "MYSTERY_TotalSeqB"]
    obs = pd.DataFrame(index=[f"c{i}" for i in range(100)])
    mdata = md.MuData(
        {
            "rna": ad.AnnData(rna_counts, obs=obs, var=pd.DataFrame(index=genes)),
            "prot": ad.AnnData(
                np.ones((100, len(proteins)), dtype=np.int32),
                obs=obs,
                var=pd.DataFrame(index=proteins),
            ),
        }
    )
    with pytest.warns(UserWarning, match=r"1 of 8 ADTs have no entry.*MYSTERY_TotalSeqB"):
        pairs = pp.rna_protein_pairs(mdata)
    pairs = pairs.set_index("protein")
    assert pairs.loc["CD16_TotalSeqB", ["gene", "kept"]].tolist() == ["FCGR3A", True]
    assert pairs.loc["CD16_TotalSeqB", "detection"] == pytest.approx(0.5)
    assert pairs.loc["CD3_TotalSeqB", "detection"] == pytest.approx(0.1)
    assert pairs.loc[["CD45_A", "CD45_B"], "gene"].tolist() == ["PTPRC", "PTPRC"]
    assert pairs.loc[["CD45_A", "CD45_B"], "kept"].all(), "each duplicate antibody is its own pair"
    assert pairs.loc["CD20_TotalSeqB", "reason"] == "detected in 1% < 2%"
    assert pairs.loc["CD56_TotalSeqB", "reason"] == "gene not measured"
    assert pairs.loc["Mouse_IgG1_TotalSeqB", "reason"] == "isotype control"
    assert pairs.loc["MYSTERY_TotalSeqB", "reason"] == "no alias"
    assert pairs["kept"].sum() == 4

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        relaxed = pp.rna_protein_pairs(mdata, min_detection=0.01, aliases={"mystery": "CD3E"})
    assert relaxed.set_index("protein")["kept"].sum() == 6


#: Shared panels that ship with scmodtt (same cells and ADTs; genes detected in few cells dropped,
#: which leaves every pair gene the tests expect kept): the tests run without ../shared too.
BUNDLED = {
    "peterson2017_reapseq_pbmc.h5mu": "reapseq_pbmc",
    "neurips2021_bmmc_cite_starter.h5mu": "bmmc_cite",
}


def shared_dataset(name: str, prefer_bundled: bool = False) -> md.MuData:
    path = SHARED_DATA / name
    if name in BUNDLED and (prefer_bundled or not path.exists()):
        return getattr(scmodtt.datasets, BUNDLED[name])()
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (and not bundled)")
    with warnings.catch_warnings():
        # Gene and antibody names overlap (CD4, CD14, …): mudata warns about global var_names.
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        return md.read_h5mu(path)


# Known pairs per dataset: (protein, gene, kept). Genes and isotypes as the panels define them.
EXPECTED_PAIRS = {
    "peterson2017_reapseq_pbmc.h5mu": [
        ("CD4_GTCCAGGC", "CD4", True),
        ("CD4_CACGATTC", "CD4", True),
        ("CD8_GTATCGAG", "CD8A", True),
        ("CD8_CAATCCCT", "CD8A", True),
        ("CD45RA_GTGATAGT", "PTPRC", True),
        ("CD14_AATTGAAC", "CD14", True),
        ("HLA-DRA_TAGACGAC", "HLA-DRA", True),
        ("CD20_ACGCGGAA", "MS4A1", True),
        ("CD3_AGGATCGA", "CD3E", True),
        ("CD56_TACATAAG", "NCAM1", False),
    ],
    "pbmc5k_protein_v3_scvi_test200.h5mu": [
        ("CD16_TotalSeqB", "FCGR3A", True),
        ("CD3_TotalSeqB", "CD3E", True),
        ("CD8a_TotalSeqB", "CD8A", True),
        ("CD14_TotalSeqB", "CD14", True),
        ("CD45RA_TotalSeqB", "PTPRC", True),
        ("HLA-DR_TotalSeqB", "HLA-DRA", True),
        ("CD127_TotalSeqB", "IL7R", True),
        ("CD197_TotalSeqB", "CCR7", True),
    ],
    "mimitou2019_eccite_pbmc_ctrl_citefuse.h5mu": [
        ("CD16", "FCGR3A", True),
        ("CD3", "CD3E", True),
        ("CD8", "CD8A", True),
        ("CD45RA", "PTPRC", True),
        ("MHCII (HLA-DR)", "HLA-DRA", True),
        ("IL7Ralpha (CD127)", "IL7R", True),
        ("CD56", "NCAM1", True),
        ("CD11c", "ITGAX", True),
    ],
    "neurips2021_bmmc_cite_starter.h5mu": [
        ("HLA-DR", "HLA-DRA", True),
        ("CD69", "CD69", True),
        ("CD16", "FCGR3A", False),
        ("IgM", "IGHM", False),
        ("CD56", "NCAM1", False),
    ],
}
EXPECTED_CONTROLS = {
    "peterson2017_reapseq_pbmc.h5mu": {
        "Control_Mouse_IgG2b_CATAAAGG",
        "Mouse_IgG1_TGTGTATA",
        "Control_Rat_IgG1_TCACGGTA",
        "Blank",
    },
    "pbmc5k_protein_v3_scvi_test200.h5mu": set(),
    "mimitou2019_eccite_pbmc_ctrl_citefuse.h5mu": {"IgG1", "IgG2a"},
    "neurips2021_bmmc_cite_starter.h5mu": set(),
}


@pytest.mark.parametrize(
    ("name", "prefer_bundled"),
    [(name, False) for name in sorted(EXPECTED_PAIRS)] + [(name, True) for name in sorted(BUNDLED)],
)
def test_pairs_on_shared_datasets(name, prefer_bundled):
    mdata = shared_dataset(name, prefer_bundled)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every ADT has an alias: no warning
        pairs = pp.rna_protein_pairs(mdata)
    assert len(pairs) == mdata["prot"].n_vars
    assert (pairs["reason"] != "no alias").all(), "the alias table covers every shared dataset"
    assert (
        set(pairs.loc[pairs["reason"] == "isotype control", "protein"]) == EXPECTED_CONTROLS[name]
    )
    table = pairs.set_index("protein")
    rna_counts = mdata["rna"].X
    for protein, gene, kept in EXPECTED_PAIRS[name]:
        assert table.loc[protein, "gene"] == gene, protein
        assert table.loc[protein, "kept"] == kept, protein
        if gene in mdata["rna"].var_names:
            column = mdata["rna"].var_names.get_loc(gene)
            detection = (rna_counts[:, column] > 0).sum() / mdata.n_obs
            assert table.loc[protein, "detection"] == pytest.approx(detection)
            assert kept == (detection >= 0.02)
        else:
            assert table.loc[protein, "reason"] == "gene not measured"

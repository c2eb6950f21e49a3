"""Tests of scmodtt.pp: normalization, HVGs, feature modules, module report (pairs: test_pairs)."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import scmodtt.pp as pp
from scmodtt._gmt import read_gmt

md.set_options(pull_on_update=False)

DATA = Path(__file__).parent / "data"
HALLMARK_GMT = DATA / "hallmark_3sets.gmt"
KEY = "modtt_modules"


# --------------------------------------------------------------------------- simulated data
def planted_counts(
    rng: np.random.Generator, n_cells: int, module_sizes: list[int], mean: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts whose features share one log-normal factor per planted module."""
    labels = np.repeat(np.arange(len(module_sizes)), module_sizes)
    factors = rng.normal(size=(n_cells, len(module_sizes)))
    log_rate = np.log(mean) + 0.8 * factors[:, labels] + 0.1 * rng.normal(size=(1, labels.size))
    return rng.poisson(np.exp(log_rate)), labels


def make_mdata(
    seed: int = 0,
    n_cells: int = 300,
    rna_sizes: tuple[int, ...] = (14, 12, 10, 8),
    protein_sizes: tuple[int, ...] = (5, 4, 3),
    gene_names: list[str] | None = None,
    protein_names: list[str] | None = None,
) -> tuple[md.MuData, np.ndarray, np.ndarray]:
    """MuData (sparse RNA, dense ADT counts) with planted modules in both modalities."""
    rng = np.random.default_rng(seed)
    rna_counts, rna_labels = planted_counts(rng, n_cells, list(rna_sizes))
    protein_counts, protein_labels = planted_counts(rng, n_cells, list(protein_sizes), mean=30)
    obs_names = [f"cell{i}" for i in range(n_cells)]
    if gene_names is None:
        gene_names = [f"gene{i}" for i in range(rna_counts.shape[1])]
    rna = ad.AnnData(
        sp.csr_matrix(rna_counts.astype(np.float32)),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(index=gene_names),
    )
    prot = ad.AnnData(
        protein_counts.astype(np.float64),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(
            index=protein_names or [f"ADT{i}" for i in range(protein_counts.shape[1])]
        ),
    )
    mdata = md.MuData({"rna": rna, "prot": prot})
    mdata.obs["batch"] = np.where(np.arange(n_cells) % 2 == 0, "a", "b")
    return mdata, rna_labels, protein_labels


def hard_labels(membership: pd.DataFrame) -> np.ndarray:
    values = membership.to_numpy()
    assert (values.sum(axis=1) == 1).all(), "hard clusters: one module per feature"
    return values.argmax(axis=1)


@pytest.fixture
def planted():
    return make_mdata()


# --------------------------------------------------------------------------- normalize
def test_normalize_matches_scanpy_and_muon(planted):
    import muon as mu
    import scanpy as sc

    mdata, _, _ = planted
    rna_counts = mdata["rna"].X.copy()
    protein_counts = mdata["prot"].X.copy()
    pp.normalize(mdata)

    reference = ad.AnnData(rna_counts.copy())
    sc.pp.normalize_total(reference, target_sum=1e4)
    sc.pp.log1p(reference)
    rna_layer = mdata["rna"].layers["log1p_norm"]
    assert sp.issparse(rna_layer), "sparse counts keep a sparse normalized layer"
    np.testing.assert_allclose(rna_layer.toarray(), reference.X.toarray(), rtol=1e-5, atol=1e-6)

    # The shared CLR is log1p(x) - mean log1p(x) per cell: muon's "stoeckius" flavor.
    protein_reference = ad.AnnData(protein_counts.copy())
    mu.prot.pp.clr(protein_reference, axis=1, flavor="stoeckius")
    assert np.allclose(mdata["prot"].layers["clr"], protein_reference.X)

    # Raw counts untouched.
    assert (mdata["rna"].X != rna_counts).nnz == 0
    np.testing.assert_array_equal(mdata["prot"].X, protein_counts)


def test_normalize_sparse_equals_shared_dense_function(planted):
    from scmodtt._normalization import log1p_normalize

    mdata, _, _ = planted
    pp.normalize(mdata, protein_mod=None, rna_key_added="lognorm")
    expected = log1p_normalize(mdata["rna"].X.toarray())
    np.testing.assert_array_equal(mdata["rna"].layers["lognorm"].toarray(), expected)
    assert "clr" not in mdata["prot"].layers


def test_normalize_reads_counts_layer_and_refuses_to_overwrite_it(planted):
    mdata, _, _ = planted
    for mod in ("rna", "prot"):
        mdata[mod].layers["counts"] = mdata[mod].X.copy()
        mdata[mod].X = mdata[mod].X * 0.5  # not counts: must not be read
    pp.normalize(mdata, layer="counts")
    assert mdata["rna"].layers["log1p_norm"].max() > 0
    with pytest.raises(ValueError, match="would destroy the counts"):
        pp.normalize(mdata, layer="counts", rna_key_added="counts")


# --------------------------------------------------------------------------- HVGs
def test_highly_variable_genes_annotates_and_subsets_without_touching_input(planted):
    mdata, _, _ = planted
    n_genes = mdata["rna"].n_vars
    assert pp.highly_variable_genes(mdata, n_top_genes=20) is None
    var = mdata["rna"].var
    assert var["highly_variable"].sum() == 20
    assert {"highly_variable_rank", "means", "variances", "variances_norm"} <= set(var.columns)

    subset = pp.highly_variable_genes(mdata, n_top_genes=20, subset=True)
    assert mdata["rna"].n_vars == n_genes, "subset=True returns a copy, the input keeps its genes"
    assert subset["rna"].n_vars == 20
    assert list(subset["rna"].var_names) == list(var_names_hvg(mdata))
    assert subset["prot"].n_vars == mdata["prot"].n_vars
    assert subset.n_obs == mdata.n_obs


def var_names_hvg(mdata):
    return mdata["rna"].var_names[mdata["rna"].var["highly_variable"].to_numpy()]


def test_highly_variable_genes_batch_key_from_mudata_obs(planted):
    mdata, _, _ = planted
    pp.highly_variable_genes(mdata, n_top_genes=20, batch_key="batch")
    assert "batch" not in mdata["rna"].obs, "the batch column is not copied into the modality"
    assert mdata["rna"].var["highly_variable_nbatches"].max() <= 2
    with pytest.raises(ValueError, match="batch_key 'nope'"):
        pp.highly_variable_genes(mdata, n_top_genes=20, batch_key="nope")
    with pytest.raises(ValueError, match="n_top_genes=100 is more than the 44 genes"):
        pp.highly_variable_genes(mdata, n_top_genes=100)
    mdata["rna"].X = mdata["rna"].X * 0.3
    with pytest.raises(ValueError, match="non-integer values"):
        pp.highly_variable_genes(mdata, n_top_genes=20)


# --------------------------------------------------------------------------- Ward modules
def test_ward_recovers_planted_modules(planted):
    mdata, rna_labels, protein_labels = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    rna_modules = mdata["rna"].varm[KEY]
    protein_modules = mdata["prot"].varm[KEY]
    assert adjusted_rand_score(rna_labels, hard_labels(rna_modules)) >= 0.9
    assert adjusted_rand_score(protein_labels, hard_labels(protein_modules)) >= 0.9

    assert rna_modules.dtypes.eq(bool).all()
    assert rna_modules.index.equals(mdata["rna"].var_names)
    assert list(rna_modules.columns) == ["rna_m00", "rna_m01", "rna_m02", "rna_m03"]
    assert list(protein_modules.columns) == ["prot_m00", "prot_m01", "prot_m02"]
    summary = mdata.uns[KEY]
    assert summary["method"] == {"rna": "ward", "prot": "ward"}
    assert summary["n_modules"] == {"rna": 4, "prot": 3}
    assert summary["n_cells"] == {"rna": 300, "prot": 300}
    assert summary["elapsed_seconds"] >= 0


def test_ward_equals_scipy_ward_on_correlation_distance(planted):
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    from scmodtt._normalization import log1p_normalize

    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 6}, protein_mod=None)
    values = log1p_normalize(mdata["rna"].X)
    standardized = (values - values.mean(0)) / np.linalg.norm(values - values.mean(0), axis=0)
    expected = fcluster(linkage(pdist(standardized.T), "ward"), 6, criterion="maxclust")
    observed = hard_labels(mdata["rna"].varm[KEY])
    assert adjusted_rand_score(expected, observed) == pytest.approx(1.0)


def test_ward_uses_only_the_given_cells(planted):
    mdata, rna_labels, _ = planted
    # Gene 0 is expressed only outside the selected cells: constant (0) on them.
    counts = mdata["rna"].X.toarray()
    selected = np.arange(mdata.n_obs) < 200
    counts[selected, 0] = 0
    mdata["rna"].X = sp.csr_matrix(counts)
    as_mask, as_positions, as_names = (mdata.copy() for _ in range(3))
    with pytest.warns(UserWarning, match="constant across the 200 selected cells"):
        pp.find_modules(as_mask, n_modules={"rna": 4, "prot": 3}, cells=selected)
    membership = as_mask["rna"].varm[KEY]
    assert membership.loc["gene0", "rna_residual"]
    assert membership["rna_residual"].sum() == 1
    assert as_mask.uns[KEY]["n_cells"]["rna"] == 200
    assert adjusted_rand_score(rna_labels[1:], hard_labels(membership.iloc[1:, :-1])) >= 0.9

    with pytest.warns(UserWarning, match="constant"):
        pp.find_modules(as_positions, n_modules={"rna": 4, "prot": 3}, cells=np.arange(200))
        pp.find_modules(as_names, n_modules={"rna": 4, "prot": 3}, cells=mdata.obs_names[:200])
    pd.testing.assert_frame_equal(as_positions["rna"].varm[KEY], membership)
    pd.testing.assert_frame_equal(as_names["rna"].varm[KEY], membership)


def test_find_modules_changes_nothing_but_its_keys(planted):
    mdata, _, _ = planted
    mdata["rna"].layers["counts"] = mdata["rna"].X.copy()
    mdata["prot"].varm["other"] = np.ones((mdata["prot"].n_vars, 2))
    before = {mod: mdata[mod].copy() for mod in mdata.mod}
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    for mod, adata in before.items():
        after = mdata[mod]
        assert (after.X != adata.X).sum() == 0
        assert list(after.layers) == list(adata.layers)
        assert after.var.equals(adata.var) and after.obs.equals(adata.obs)
        assert set(after.varm) == set(adata.varm) | {KEY}
    np.testing.assert_array_equal(mdata["prot"].varm["other"], before["prot"].varm["other"])


def test_membership_survives_h5mu_round_trip(planted, tmp_path):
    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    mdata.write(tmp_path / "modules.h5mu")
    read = md.read_h5mu(tmp_path / "modules.h5mu")
    pd.testing.assert_frame_equal(read["rna"].varm[KEY], mdata["rna"].varm[KEY])
    assert read.uns[KEY]["n_modules"]["rna"] == 4


# --------------------------------------------------------------------------- default numbers
FIND_MODULES_LOGGER = "scmodtt.pp._find_modules"


def panel_sizes(n_adts: int, per_module: int = 5) -> tuple[int, ...]:
    """Planted protein module sizes that add up to ``n_adts``."""
    sizes = [per_module] * (n_adts // per_module)
    return tuple(sizes + [n_adts % per_module] if n_adts % per_module else sizes)


@pytest.mark.parametrize(("n_adts", "expected"), [(14, 7), (17, 8), (3, 2)])
def test_default_protein_modules_adapt_to_small_panels(n_adts, expected, caplog):
    mdata, _, _ = make_mdata(protein_sizes=panel_sizes(n_adts))
    with caplog.at_level(logging.INFO, logger=FIND_MODULES_LOGGER):
        # A mapping without the protein modality takes the protein default.
        pp.find_modules(mdata, n_modules={"rna": 4})
    summary = mdata.uns[KEY]
    assert summary["n_modules"] == {"rna": 4, "prot": expected}
    assert summary["n_modules_requested"] == {"rna": 4, "prot": expected}
    assert summary["n_modules_reason"]["rna"] == "given"
    reason = summary["n_modules_reason"]["prot"]
    assert reason.startswith(f"{n_adts} varying ADTs: using {expected} protein modules")
    assert "n_modules={'prot': k}" in reason
    assert reason in caplog.text
    membership = mdata["prot"].varm[KEY]
    assert list(membership.columns) == [f"prot_m{i:02d}" for i in range(expected)]
    assert (membership.sum() >= 1).all()


def test_default_protein_modules_do_not_count_isotype_controls(caplog):
    targets = [f"CD{i}_TotalSeqB" for i in range(14)]
    controls = ["Mouse_IgG1_TotalSeqB", "Rat_IgG2b_isotype", "Blank", "spike"]
    mdata, _, _ = make_mdata(protein_sizes=(5, 5, 4, 4), protein_names=targets + controls)
    mdata["prot"].var["isotype_control"] = [False] * 17 + [True]  # "spike" by annotation only
    with caplog.at_level(logging.INFO, logger=FIND_MODULES_LOGGER):
        pp.find_modules(mdata, rna_mod=None)
    summary = mdata.uns[KEY]
    # 18 ADTs would give 9 modules; the 4 controls do not earn modules: 14 // 2 = 7.
    assert summary["n_modules"] == {"prot": 7}
    assert summary["n_modules_reason"]["prot"].startswith(
        "14 varying ADTs and 4 isotype control(s): using 7 protein modules"
    )
    assert mdata["prot"].varm[KEY].sum(axis=1).eq(1).all(), "controls are still clustered"


def test_default_protein_modules_never_exceed_the_varying_adts():
    from scmodtt.pp._find_modules import _default_n_modules

    # Two ADTs, both isotype controls: the floor of 2 modules, and no more than the 2 features.
    mdata, _, _ = make_mdata(protein_sizes=(2,), protein_names=["IgG1", "IgG2a"], n_cells=60)
    pp.find_modules(mdata, rna_mod=None)
    assert mdata.uns[KEY]["n_modules_requested"] == {"prot": 2}
    # CLR makes a single ADT constant, so one varying feature only occurs below Ward: the
    # default must still stay within it (and ask for 1 module, not 0, when nothing varies).
    prot = mdata["prot"]
    assert _default_n_modules(prot, np.array([True, False]), False, "prot")[0] == 1
    assert _default_n_modules(prot, np.array([False, False]), False, "prot")[0] == 1
    assert _default_n_modules(prot, np.array([False, True]), True, "rna")[0] == 1
    one_adt, _, _ = make_mdata(protein_sizes=(1,), n_cells=60)
    with pytest.raises(ValueError, match="'prot' has 0 features that vary.*fewer than the 1 mod"):
        pp.find_modules(one_adt, rna_mod=None)


@pytest.mark.parametrize("n_adts", [48, 200])
def test_default_protein_modules_capped_at_20_for_large_panels(n_adts):
    mdata, _, _ = make_mdata(protein_sizes=panel_sizes(n_adts, per_module=8), n_cells=200)
    pp.find_modules(mdata, n_modules=None, rna_mod=None)
    summary = mdata.uns[KEY]
    assert summary["n_modules"] == {"prot": 20}
    assert summary["n_modules_requested"] == {"prot": 20}
    assert f"{n_adts} varying ADTs: using 20 protein modules" in summary["n_modules_reason"]["prot"]
    assert mdata["prot"].varm[KEY].shape == (n_adts, 20)


@pytest.mark.parametrize(
    ("n_modules", "message"),
    [
        ({"rna": 4, "prot": 15}, "'prot' has 14 features that vary.*fewer than the 15 modules"),
        (15, "'prot' has 14 features that vary.*fewer than the 15 modules"),
        ({"prot": 20}, "'prot' has 14 features that vary.*fewer than the 20 modules"),
    ],
)
def test_explicit_too_many_protein_modules_still_raises(n_modules, message):
    mdata, _, _ = make_mdata(protein_sizes=panel_sizes(14))
    kwargs = {"rna_mod": None} if n_modules == {"prot": 20} else {}
    with pytest.raises(ValueError, match=message):
        pp.find_modules(mdata, n_modules=n_modules, **kwargs)
    assert KEY not in mdata.uns and KEY not in mdata["prot"].varm


def test_default_rna_modules_unchanged_on_enough_genes(caplog):
    mdata, _, _ = make_mdata(rna_sizes=(20, 20, 20), n_cells=200)
    with caplog.at_level(logging.WARNING, logger=FIND_MODULES_LOGGER):
        pp.find_modules(mdata, n_modules={"prot": 3})
    summary = mdata.uns[KEY]
    assert summary["n_modules"] == {"rna": 50, "prot": 3}
    assert summary["n_modules_reason"]["rna"] == "default: 50 RNA modules"
    assert not caplog.records, "the usual RNA default is not a warning"


def test_default_rna_modules_adapt_to_fewer_genes_than_50(planted, caplog):
    mdata, _, _ = planted  # 44 genes: the default of 50 used to be refused
    with caplog.at_level(logging.WARNING, logger=FIND_MODULES_LOGGER):
        pp.find_modules(mdata, n_modules={"prot": 3})
    summary = mdata.uns[KEY]
    assert summary["n_modules"] == {"rna": 22, "prot": 3}
    assert summary["n_modules_reason"]["rna"].startswith(
        "44 genes vary, fewer than the default 50 modules: using 22 RNA modules"
    )
    assert "using 22 RNA modules" in caplog.text
    with pytest.raises(ValueError, match="fewer than the 50 modules requested"):
        pp.find_modules(mdata, n_modules={"rna": 50, "prot": 3}, key_added="explicit")


def test_default_choice_survives_h5mu_round_trip(tmp_path):
    mdata, _, _ = make_mdata(protein_sizes=panel_sizes(14))
    pp.find_modules(mdata)
    mdata.write(tmp_path / "modules.h5mu")
    summary = md.read_h5mu(tmp_path / "modules.h5mu").uns[KEY]
    assert summary["n_modules_requested"] == {"rna": 22, "prot": 7}
    assert summary["n_modules_reason"]["prot"].startswith("14 varying ADTs: using 7")


# --------------------------------------------------------------------------- random modules
def test_random_modules_match_partition_sizes_exactly(planted):
    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    pp.find_modules(mdata, method="random", partition_key=KEY, key_added="random", seed=1)
    for mod in ("rna", "prot"):
        source = mdata[mod].varm[KEY]
        shuffled = mdata[mod].varm["random"]
        assert sorted(shuffled.sum().tolist()) == sorted(source.sum().tolist())
        np.testing.assert_array_equal(shuffled.sum().to_numpy(), source.sum().to_numpy())
        assert adjusted_rand_score(hard_labels(source), hard_labels(shuffled)) < 0.5
    assert mdata.uns["random"]["partition_key"] == KEY
    assert list(mdata["rna"].varm["random"].columns) == [f"rna_random0{i}" for i in range(4)]

    first = mdata["rna"].varm["random"].copy()
    pp.find_modules(mdata, method="random", partition_key=KEY, key_added="random", seed=1)
    pd.testing.assert_frame_equal(mdata["rna"].varm["random"], first)
    pp.find_modules(mdata, method="random", partition_key=KEY, key_added="random", seed=2)
    assert not mdata["rna"].varm["random"].equals(first)


def test_random_modules_without_partition_match_ward_sizes(planted):
    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3}, method="random", key_added="random")
    ward_sizes = mdata["rna"].varm[KEY].sum().to_numpy()
    np.testing.assert_array_equal(mdata["rna"].varm["random"].sum().to_numpy(), ward_sizes)


def test_random_modules_keep_overlaps_and_residual():
    gmt = read_gmt(HALLMARK_GMT)
    genes = sorted({gene for genes in gmt.values() for gene in genes})[:60] + ["NOT_IN_A_SET"]
    mdata, _, _ = make_mdata(rna_sizes=(61,), gene_names=genes)
    pp.find_modules(mdata, method="gene_sets", gene_sets=gmt, n_modules={"prot": 2})
    pp.find_modules(
        mdata,
        method={"rna": "random"},
        partition_key=KEY,
        key_added="random",
        n_modules={"prot": 2},
    )
    source, shuffled = mdata["rna"].varm[KEY], mdata["rna"].varm["random"]
    np.testing.assert_array_equal(shuffled.sum().to_numpy(), source.sum().to_numpy())
    assert shuffled["rna_residual"].equals(source["rna_residual"])
    assert sorted(shuffled.sum(axis=1)) == sorted(source.sum(axis=1))
    assert not np.array_equal(shuffled.to_numpy(), source.to_numpy())


# --------------------------------------------------------------------------- gene-set modules
def test_gene_set_modules_from_dict():
    genes = [f"G{i}" for i in range(20)]
    mdata, _, _ = make_mdata(rna_sizes=(10, 10), gene_names=genes)
    gene_sets = {
        "first": ["G0", "G1", "G2", "G3", "G4", "G5"],
        "overlapping": ["G4", "G5", "G6", "G7", "G8", "UNMEASURED"],
        "too_small": ["G10", "G11", "UNMEASURED", "ALSO_UNMEASURED", "G12"],
    }
    pp.find_modules(
        mdata, method="gene_sets", gene_sets=gene_sets, min_size=4, n_modules={"prot": 3}
    )
    membership = mdata["rna"].varm[KEY]
    assert list(membership.columns) == ["first", "overlapping", "rna_residual"]
    assert set(membership.index[membership["first"]]) == set(gene_sets["first"])
    assert set(membership.index[membership["overlapping"]]) == {"G4", "G5", "G6", "G7", "G8"}
    assert set(membership.index[membership["rna_residual"]]) == {f"G{i}" for i in range(9, 20)}
    summary = mdata.uns[KEY]
    assert summary["method"] == {"rna": "gene_sets", "prot": "ward"}
    assert summary["n_gene_sets_dropped"] == 1
    assert list(mdata["prot"].varm[KEY].columns) == ["prot_m00", "prot_m01", "prot_m02"]


def test_gene_set_modules_from_gmt_file():
    gmt = read_gmt(HALLMARK_GMT)
    assert len(gmt) == 3
    measured = ["NOTCH1", "JAG1", "HES1", "VEGFA", "POSTN", "LPL", "AXIN2", "LEF1", "CD3E", "MYC"]
    mdata, _, _ = make_mdata(rna_sizes=(5, 5), gene_names=measured)
    pp.find_modules(
        mdata, method="gene_sets", gene_sets=HALLMARK_GMT, min_size=1, n_modules={"prot": 3}
    )
    membership = mdata["rna"].varm[KEY]
    for name, genes in gmt.items():
        assert set(membership.index[membership[name]]) == set(genes) & set(measured)
    assert membership.loc["CD3E", "rna_residual"]
    assert membership.loc["CD3E"].sum() == 1
    assert membership.loc["JAG1"].sum() >= 2, "JAG1 is in all three sets: overlaps are kept"
    assert mdata.uns[KEY]["gene_sets"] == str(HALLMARK_GMT)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rna_mod": "gex"}, r"Modality 'gex' not found.*available modalities: \['rna', 'prot'\]"),
        ({"method": "kmeans"}, "Unknown method 'kmeans'"),
        ({"n_modules": {"rna": 100}}, "fewer than the 100 modules requested"),
        ({"n_modules": {"prot": 50}}, "fewer than the 50 modules requested"),
        ({"n_modules": {"gex": 3}}, r"`n_modules` names modalities \['gex'\]"),
        ({"n_modules": 0}, "positive integer"),
        ({"cells": np.arange(300) < 2}, "at least 3 are needed"),
        ({"cells": np.ones(5, dtype=bool)}, "mask has 5 entries but the MuData has 300 cells"),
        ({"cells": ["cell1", "nope"]}, "not in `mdata.obs_names`"),
        ({"method": "gene_sets"}, "needs `gene_sets=`"),
        ({"method": {"prot": "gene_sets"}, "gene_sets": {"a": ["b"]}}, "RNA modality only"),
        ({"method": "random", "partition_key": "missing"}, r"no module table `varm\['missing'\]`"),
        ({"layer": "counts"}, "Layer 'counts' not found"),
    ],
)
def test_find_modules_errors(planted, kwargs, message):
    mdata, _, _ = planted
    kwargs = {"n_modules": {"rna": 4, "prot": 3}} | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        pp.find_modules(mdata, **kwargs)
    assert KEY not in mdata["rna"].varm and KEY not in mdata.uns, "nothing written on error"


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda x: -x, "negative values"),
        (lambda x: x * 0.5 + 0.25, "non-integer values"),
        (lambda x: np.where(np.arange(x.shape[1]) == 0, np.nan, x), "NaN or infinite"),
        (lambda x: np.where(np.arange(x.shape[1]) == 0, np.inf, x), "NaN or infinite"),
    ],
)
def test_non_count_data_is_refused(planted, corrupt, message):
    mdata, _, _ = planted
    mdata["prot"].X = corrupt(mdata["prot"].X)
    with pytest.raises(ValueError, match=message):
        pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    with pytest.raises(ValueError, match=message):
        pp.normalize(mdata)
    assert "log1p_norm" not in mdata["rna"].layers, "normalize writes nothing on error"


def test_gene_sets_without_overlap_are_refused(planted):
    mdata, _, _ = planted
    with pytest.raises(ValueError, match="None of the 3 gene sets shares a gene"):
        pp.find_modules(mdata, method="gene_sets", gene_sets=HALLMARK_GMT, n_modules={"prot": 3})
    with pytest.raises(ValueError, match="No gene set has at least min_size=5"):
        pp.find_modules(
            mdata, method="gene_sets", gene_sets={"s": ["gene0", "gene1"]}, n_modules={"prot": 3}
        )


def test_input_must_be_mudata(planted):
    mdata, _, _ = planted
    with pytest.raises(TypeError, match="Expected a mudata.MuData"):
        pp.find_modules(mdata["rna"])


# --------------------------------------------------------------------------- module report
def test_module_report_scores_planted_modules_above_random(planted):
    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    report = pp.module_report(mdata)
    assert list(report.columns) == [
        "modality",
        "module",
        "size",
        "mean_within_r",
        "random_mean_within_r",
    ]
    assert len(report) == 7
    assert report.groupby("modality")["size"].sum().to_dict() == {"prot": 12, "rna": 44}
    assert (report["mean_within_r"] > 0.3).all()
    assert (report["random_mean_within_r"].abs() < report["mean_within_r"]).all()


def test_module_report_mean_correlation_matches_numpy(planted):
    from scmodtt._normalization import clr

    mdata, _, _ = planted
    pp.find_modules(mdata, n_modules={"rna": 4, "prot": 3})
    report = pp.module_report(mdata, rna_mod=None, cells=np.arange(100))
    values = clr(mdata["prot"].X[:100])
    for row in report.itertuples():
        members = mdata["prot"].varm[KEY][row.module].to_numpy()
        correlation = np.corrcoef(values[:, members].T)
        expected = correlation[~np.eye(members.sum(), dtype=bool)].mean()
        assert row.mean_within_r == pytest.approx(expected, abs=1e-4)

"""Known-answer tests of scmodtt.metrics on a small simulated CITE-seq data set.

The simulator has 3 cell types with type-specific means; within a type, each gene and its matched
protein share a latent factor whose loading differs per (type, pair), so that within-type
gene–protein correlations vary and can be recovered (or destroyed) on purpose. Every expectation
below follows from how the data were made, not from a previous run of the implementation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

from scmodtt.metrics import (
    DISTRIBUTION_METRICS,
    SharedSpace,
    SkippedCellTypesWarning,
    c2st_auc,
    cond_r,
    distribution_fidelity,
    energy_distance,
    evaluate,
    fit_reference_embedding,
    interact_r,
    knn_precision_recall,
    mmd_rbf,
    shared_space,
    tstr_f1,
)
from scmodtt.metrics._stats import grouped_pearson, rowwise_pearson

N_TYPES = 3
N_PAIRS = 8
N_BACKGROUND_GENES = 12
CELLS_PER_TYPE = 150
CELL_TYPES = [f"type{c}" for c in range(N_TYPES)]
GENES = [f"GENE{k}" for k in range(N_PAIRS)] + [f"BG{k}" for k in range(N_BACKGROUND_GENES)]
PROTEINS = [f"PROT{k}" for k in range(N_PAIRS)]
PAIRS = [(f"GENE{k}", f"PROT{k}") for k in range(N_PAIRS)]


@dataclass(frozen=True)
class CiteSimulator:
    """Fixed parameters of one distribution; :meth:`draw` samples cells from it."""

    gene_type_means: np.ndarray  # types × pairs, log scale
    protein_type_means: np.ndarray  # types × pairs, log scale
    loadings: np.ndarray  # types × pairs, strength of the shared gene–protein factor

    def draw(
        self,
        seed: int,
        cells_per_type: dict[str, int] | None = None,
        gene_shift: float = 0.0,
        labels_in_rna_obs_only: bool = False,
    ) -> md.MuData:
        rng = np.random.default_rng(seed)
        sizes = cells_per_type or dict.fromkeys(CELL_TYPES, CELLS_PER_TYPE)
        cell_type = np.repeat(np.arange(N_TYPES), [sizes[name] for name in CELL_TYPES])
        n_cells = len(cell_type)
        shared = self.loadings[cell_type] * rng.normal(size=(n_cells, N_PAIRS))
        paired_genes = rng.poisson(
            np.exp(2.5 + gene_shift + self.gene_type_means[cell_type] + shared)
        )
        background_genes = rng.poisson(30.0, size=(n_cells, N_BACKGROUND_GENES))
        proteins = rng.poisson(np.exp(4.0 + self.protein_type_means[cell_type] + shared))

        obs_names = [f"draw{seed}_cell{i}" for i in range(n_cells)]
        labels = pd.Categorical([CELL_TYPES[c] for c in cell_type], categories=CELL_TYPES)
        rna = ad.AnnData(
            np.hstack([paired_genes, background_genes]).astype(np.float32),
            obs=pd.DataFrame(index=obs_names),
            var=pd.DataFrame(index=GENES),
        )
        prot = ad.AnnData(
            proteins.astype(np.float32),
            obs=pd.DataFrame(index=obs_names),
            var=pd.DataFrame(index=PROTEINS),
        )
        if labels_in_rna_obs_only:
            rna.obs["cell_type"] = labels
            return md.MuData({"rna": rna, "prot": prot})
        mdata = md.MuData({"rna": rna, "prot": prot})
        mdata.obs["cell_type"] = labels
        return mdata


@pytest.fixture(scope="module")
def simulator() -> CiteSimulator:
    rng = np.random.default_rng(2024)
    gene_type_means = rng.normal(0.0, 1.0, size=(N_TYPES, N_PAIRS))
    return CiteSimulator(
        gene_type_means=gene_type_means,
        # Proteins follow their genes across types, with some protein-specific deviation.
        protein_type_means=gene_type_means + rng.normal(0.0, 0.3, size=(N_TYPES, N_PAIRS)),
        loadings=rng.uniform(0.0, 1.2, size=(N_TYPES, N_PAIRS)),
    )


@pytest.fixture(scope="module")
def reference(simulator):
    return simulator.draw(seed=0)


@pytest.fixture(scope="module")
def real(simulator):
    return simulator.draw(seed=1)


@pytest.fixture(scope="module")
def matched(simulator):
    """An independent draw from the real cells' distribution: what a perfect generator makes."""
    return simulator.draw(seed=2)


@pytest.fixture(scope="module")
def shifted(simulator):
    return simulator.draw(seed=3, gene_shift=1.5)


def replace_protein_counts(mdata: md.MuData, protein_counts: np.ndarray) -> md.MuData:
    prot = mdata["prot"].copy()
    prot.X = protein_counts
    new = md.MuData({"rna": mdata["rna"].copy(), "prot": prot})
    new.obs["cell_type"] = mdata.obs["cell_type"].to_numpy()
    return new


def permute_proteins_within_type(mdata: md.MuData, seed: int) -> md.MuData:
    """Shuffle which cell each protein profile belongs to, within each cell type.

    Keeps every type's RNA and protein distributions (so its means) but breaks the gene–protein
    coupling inside a type.
    """
    rng = np.random.default_rng(seed)
    labels = mdata.obs["cell_type"].to_numpy()
    order = np.arange(mdata.n_obs)
    for cell_type in CELL_TYPES:
        members = np.flatnonzero(labels == cell_type)
        order[members] = rng.permutation(members)
    return replace_protein_counts(mdata, np.asarray(mdata["prot"].X)[order])


def with_labels(mdata: md.MuData, labels) -> md.MuData:
    new = mdata.copy()
    new.obs["cell_type"] = labels
    return new


# --- the shared space ------------------------------------------------------------------------


def test_shared_space_matches_its_definition(real):
    space = shared_space(real)
    rna_counts = np.asarray(real["rna"].X, dtype=np.float64)
    protein_log = np.log1p(np.asarray(real["prot"].X, dtype=np.float64))
    expected_rna = np.log1p(rna_counts / rna_counts.sum(axis=1, keepdims=True) * 1e4)
    expected_protein = protein_log - protein_log.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(space.rna, expected_rna)
    np.testing.assert_allclose(space.protein, expected_protein)
    assert list(space.gene_names) == GENES
    assert list(space.protein_names) == PROTEINS
    assert (space.labels("cell_type") == real.obs["cell_type"].astype(str).to_numpy()).all()


def test_shared_space_reads_a_layer_and_falls_back_to_rna_obs(simulator, real):
    only_rna_labels = simulator.draw(seed=1, labels_in_rna_obs_only=True)
    for modality in only_rna_labels.mod.values():
        modality.layers["counts"] = modality.X.copy()
        modality.X = np.zeros_like(modality.X)
    space = shared_space(only_rna_labels, layer="counts")
    np.testing.assert_allclose(space.rna, shared_space(real).rna)
    assert (space.labels("cell_type") == shared_space(real).labels("cell_type")).all()


def test_grouped_and_rowwise_pearson_match_numpy():
    rng = np.random.default_rng(7)
    codes = np.repeat([0, 1, 2], [30, 40, 50])
    rng.shuffle(codes)
    x = rng.normal(size=(120, 4))
    y = x + rng.normal(size=(120, 4))
    x[codes == 1, 2] = 3.0  # constant within group 1: undefined there
    r = grouped_pearson(x, y, codes, 3)
    for group in range(3):
        for k in range(4):
            members = codes == group
            if group == 1 and k == 2:
                assert np.isnan(r[group, k])
            else:
                expected = np.corrcoef(x[members, k], y[members, k])[0, 1]
                assert np.isclose(r[group, k], expected)
    rows = rowwise_pearson(x.T, y.T)
    assert np.allclose(rows, [np.corrcoef(x[:, k], y[:, k])[0, 1] for k in range(4)])


# --- cond_r and interact_r -------------------------------------------------------------------


def test_identical_sets_have_perfect_coupling_scores(real):
    assert np.isclose(cond_r(real, real, PAIRS).value, 1.0)
    assert np.isclose(interact_r(real, real, PAIRS).value, 1.0)


def test_independent_draw_keeps_coupling(real, matched):
    result = cond_r(real, matched, PAIRS)
    assert result.r_real.shape == (N_TYPES, N_PAIRS)
    assert result.excluded.empty and result.skipped_cell_types.empty
    # Loadings vary across (type, pair), so a second draw reproduces the pattern of r.
    assert result.value > 0.6
    assert interact_r(real, matched, PAIRS).value > 0.8


def test_destroyed_coupling_gives_cond_r_near_zero(real):
    # Any single shuffle correlates r_real with noise, ±0.2 on 24 entries; average 5 shuffles.
    shuffles = [permute_proteins_within_type(real, seed) for seed in range(5)]
    values = [cond_r(real, shuffled, PAIRS).value for shuffled in shuffles]
    assert abs(np.mean(values)) < 0.3
    # The shuffle keeps each type's means, so between-type agreement is untouched.
    assert interact_r(real, shuffles[0], PAIRS).value > 0.95


def test_constant_entries_are_excluded_and_counted(real, matched):
    counts = np.asarray(matched["prot"].X).copy()
    type0 = (matched.obs["cell_type"] == "type0").to_numpy()
    counts[type0, :] = 50.0  # every protein constant in type0: CLR is constant there
    result = cond_r(real, replace_protein_counts(matched, counts), PAIRS)
    assert len(result.excluded) == N_PAIRS
    assert set(result.excluded["cell_type"]) == {"type0"}
    assert set(result.excluded["constant_in"]) == {"synthetic"}
    assert result.n_entries == (N_TYPES - 1) * N_PAIRS
    assert np.isfinite(result.value)


def test_pairs_accept_a_dataframe(real, matched):
    frame = pd.DataFrame(PAIRS, columns=["gene", "protein"])
    assert np.isclose(cond_r(real, matched, frame).value, cond_r(real, matched, PAIRS).value)


def test_small_cell_types_are_reported(simulator, real):
    small = simulator.draw(seed=4, cells_per_type={"type0": 150, "type1": 150, "type2": 10})
    with pytest.warns(SkippedCellTypesWarning, match="type2"):
        result = cond_r(real, small, PAIRS, min_cells=20)
    assert list(result.r_real.index) == ["type0", "type1"]
    skipped = result.skipped_cell_types.set_index("cell_type")
    assert list(skipped.index) == ["type2"]
    assert skipped.loc["type2", "n_synthetic"] == 10
    assert skipped.loc["type2", "n_real"] == CELLS_PER_TYPE
    # Two usable types leave one type pair: too few to correlate, so NaN with a warning.
    with (
        pytest.warns(SkippedCellTypesWarning),
        pytest.warns(UserWarning, match="interact_r is NaN"),
    ):
        interaction = interact_r(real, small, PAIRS)
    assert interaction.skipped_cell_types["cell_type"].tolist() == ["type2"]
    assert np.isnan(interaction.value) and len(interaction.interaction) == 1


# --- TSTR ------------------------------------------------------------------------------------


def test_tstr_separates_correct_from_shuffled_labels(real, matched, simulator):
    correct = tstr_f1(matched, real, real_train=simulator.draw(seed=5))
    assert correct.tstr_f1 > 0.8
    assert correct.trtr_f1 > 0.8
    assert list(correct.per_label.index) == CELL_TYPES

    shuffled_labels = np.random.default_rng(0).permutation(matched.obs["cell_type"].to_numpy())
    shuffled = tstr_f1(with_labels(matched, shuffled_labels), real)
    assert shuffled.tstr_f1 < 0.5
    assert shuffled.trtr_f1 is None


def test_tstr_scores_an_ungenerated_type_as_zero(real, simulator):
    two_types = simulator.draw(seed=6, cells_per_type={"type0": 150, "type1": 150, "type2": 0})
    result = tstr_f1(two_types, real)
    assert result.per_label.loc["type2", "tstr"] == 0.0
    assert result.per_label.loc["type2", "n_synthetic"] == 0
    assert np.isclose(result.tstr_f1, result.per_label["tstr"].mean())


# --- distribution fidelity -------------------------------------------------------------------


def test_two_sample_statistics_on_identical_sets():
    cells = np.random.default_rng(3).normal(size=(150, 5))
    precision, recall = knn_precision_recall(cells, cells, k=5)
    assert precision == 1.0 and recall == 1.0
    # Unbiased estimators on a set against itself: the diagonal is left out of the within-set
    # mean only, so both are slightly negative, by at most 2 / n times the largest term.
    assert -2 / 150 <= mmd_rbf(cells, cells) <= 0.0
    assert energy_distance(cells, cells) <= 0.0


def test_distribution_metrics_rank_matched_above_shifted(real, matched, shifted, reference):
    kwargs = {"reference": reference, "n_components": 5, "classifier": "knn"}
    good = distribution_fidelity(real, matched, **kwargs).summary
    bad = distribution_fidelity(real, shifted, **kwargs).summary
    assert 0.4 < good["c2st_auc"] < 0.6
    assert bad["c2st_auc"] > 0.9
    assert abs(good["mmd2_rbf"]) < 0.1 * bad["mmd2_rbf"]
    assert abs(good["energy_distance"]) < 0.1 * bad["energy_distance"]
    assert good["knn_precision"] > 0.7 and good["knn_recall"] > 0.7
    # Shifted cells may still land near some real cells (precision), but they cover few of them.
    assert bad["knn_recall"] < 0.5


def test_gradient_boosting_c2st(real, matched, shifted, reference):
    embedding = fit_reference_embedding(reference, n_components=5)
    real_scores = embedding.transform(real)
    assert 0.4 < c2st_auc(real_scores, embedding.transform(matched)) < 0.6
    assert c2st_auc(real_scores, embedding.transform(shifted)) > 0.9


def test_c2st_is_not_fooled_by_copies_of_real_cells(real, matched, reference):
    # A bootstrap repeats cells; a classifier that saw one copy in training must not get credit
    # for recognizing the others, so a bootstrap of real cells is indistinguishable from real.
    embedding = fit_reference_embedding(reference, n_components=5)
    real_scores, matched_scores = embedding.transform(real), embedding.transform(matched)
    real_labels = real.obs["cell_type"].to_numpy()
    matched_labels = matched.obs["cell_type"].to_numpy()
    rng = np.random.default_rng(0)
    bootstrap_aucs, identical_aucs = [], []
    for cell_type in CELL_TYPES:
        real_type = real_scores[real_labels == cell_type]
        resampled = rng.choice(np.flatnonzero(matched_labels == cell_type), CELLS_PER_TYPE)
        bootstrap_aucs.append(c2st_auc(real_type, matched_scores[resampled]))
        identical_aucs.append(c2st_auc(real_type, real_type))
    assert 0.4 < np.mean(bootstrap_aucs) < 0.6
    assert 0.4 < np.mean(identical_aucs) < 0.6


def test_distribution_fidelity_reports_small_types(simulator, real, reference):
    small = simulator.draw(seed=4, cells_per_type={"type0": 150, "type1": 150, "type2": 10})
    with pytest.warns(SkippedCellTypesWarning, match="type2"):
        result = distribution_fidelity(real, small, reference, n_components=5, classifier="knn")
    assert result.skipped_cell_types["cell_type"].tolist() == ["type2"]
    assert result.per_cell_type["cell_type"].tolist() == ["type0", "type1"]


def test_reference_overlapping_real_cells_warns(real, matched):
    with pytest.warns(UserWarning, match="reference set"):
        distribution_fidelity(real, matched, real, n_components=5, classifier="knn")


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_returns_every_metric(real, matched, reference, simulator):
    kwargs = {"real_train": simulator.draw(seed=5), "reference": reference, "n_components": 5}
    table = evaluate(real, matched, PAIRS, classifier="knn", **kwargs)
    expected_metrics = ["cond_r", "interact_r", "tstr_f1", "trtr_f1", *DISTRIBUTION_METRICS]
    assert table["metric"].tolist() == expected_metrics
    assert {"metric", "value", "n_skipped", "skipped_cell_types"} <= set(table.columns)
    assert table["value"].notna().all()
    assert (table["n_skipped"] == 0).all()
    again = evaluate(real, matched, PAIRS, classifier="knn", **kwargs)
    pd.testing.assert_frame_equal(table, again)  # seeded: the same inputs give the same table


def test_evaluate_without_reference_keeps_rows_and_reports_skips(real, simulator):
    small = simulator.draw(seed=4, cells_per_type={"type0": 150, "type1": 150, "type2": 10})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = evaluate(real, small, PAIRS).set_index("metric")
    skip_warnings = [w for w in caught if issubclass(w.category, SkippedCellTypesWarning)]
    assert len(skip_warnings) == 1 and "type2" in str(skip_warnings[0].message)
    assert any("no reference" in str(w.message) for w in caught)
    assert table.loc[list(DISTRIBUTION_METRICS), "value"].isna().all()
    assert np.isnan(table.loc["trtr_f1", "value"])
    assert table.loc["cond_r", "n_skipped"] == 1
    assert "type2" in table.loc["cond_r", "skipped_cell_types"]


# --- bad input -------------------------------------------------------------------------------


def test_missing_labels_key_raises(real, matched):
    with pytest.raises(ValueError, match="labels_key 'celltype'"):
        cond_r(real, matched, PAIRS, labels_key="celltype")


def test_no_shared_cell_types_raises(real, matched):
    renamed = with_labels(matched, matched.obs["cell_type"].astype(str).radd("other_"))
    with pytest.raises(ValueError, match="no cell type has >= 20 cells in both"):
        cond_r(real, renamed, PAIRS)


def test_no_pairs_raises(real, matched):
    with pytest.raises(ValueError, match="No RNA–protein pairs"):
        cond_r(real, matched, [])
    with pytest.raises(ValueError, match="pair genes"):
        cond_r(real, matched, [("NOT_A_GENE", "PROT0")])
    with pytest.raises(ValueError, match="needs >= 3 pairs"):
        interact_r(real, matched, PAIRS[:2])


def test_nan_counts_raise(real, matched):
    counts = np.asarray(matched["prot"].X).copy()
    counts[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cond_r(real, replace_protein_counts(matched, counts), PAIRS)
    space = shared_space(matched)
    rna = space.rna.copy()
    rna[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SharedSpace(rna, space.protein, space.gene_names, space.protein_names, space.obs)


def test_missing_labels_raise(real, matched):
    labels = matched.obs["cell_type"].astype(object).to_numpy()
    labels[:3] = None
    with pytest.raises(ValueError, match="3 of 450 cells have no 'cell_type' label"):
        tstr_f1(with_labels(matched, labels), real)


def test_mismatched_features_raise(real, matched):
    fewer_genes = md.MuData({"rna": matched["rna"][:, :-1].copy(), "prot": matched["prot"].copy()})
    fewer_genes.obs["cell_type"] = matched.obs["cell_type"].to_numpy()
    with pytest.raises(ValueError, match="feature\\(s\\) missing"):
        tstr_f1(fewer_genes, real)

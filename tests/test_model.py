"""MODTT: training, outputs, generation and save/load (input checks: ``test_model_input.py``)."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch
from conftest import MODULES_KEY, PROTEIN_MOD, RNA_MOD
from mudata import MuData

import scmodtt
from scmodtt import MODTT


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _elbo_train(model) -> np.ndarray:
    return model.history["elbo_train"].to_numpy(dtype=np.float64).ravel()


def _n_modules(mdata) -> int:
    return sum(mdata[mod].varm[MODULES_KEY].shape[1] for mod in (RNA_MOD, PROTEIN_MOD))


def _labels(mdata) -> list[str]:
    return sorted(mdata.obs["labels"].astype(str).unique())


def _setup(mdata, setup_kwargs, **overrides):
    MODTT.setup_mudata(mdata, **{**setup_kwargs, **overrides})
    return mdata


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    ("architecture", "coupling", "gene_likelihood", "protein_likelihood"),
    [
        ("modular", "tt", "nb", "nbmixture"),
        ("modular", "tt", "zinb", "nb"),
        ("modular", "tt", "normal", "normal"),
        ("modular", "dense", "zinb", "nbmixture"),
        ("modular", "dense", "normal", "nb"),
        ("modular", "dense", "nb", "normal"),
        ("flat", "tt", "nb", "normal"),
        ("flat", "tt", "zinb", "nbmixture"),
        ("flat", "tt", "normal", "nb"),
    ],
)
def test_train_every_architecture_and_likelihood(
    mdata, setup_kwargs, train_kwargs, architecture, coupling, gene_likelihood, protein_likelihood
):
    if architecture == "flat":  # the flat model needs no module tables
        for mod in (RNA_MOD, PROTEIN_MOD):
            del mdata[mod].varm[MODULES_KEY]
    _setup(mdata, setup_kwargs)
    n_latent = 5
    model = MODTT(
        mdata,
        architecture=architecture,
        coupling=coupling,
        gene_likelihood=gene_likelihood,
        protein_likelihood=protein_likelihood,
        n_latent=n_latent,
    )
    assert model.module.gene_likelihood.likelihood == gene_likelihood
    assert model.module.protein_likelihood.likelihood == protein_likelihood
    assert model.module.balance_modalities == (
        gene_likelihood == "normal" and protein_likelihood == "normal"
    )
    model.train(**train_kwargs)

    elbo = _elbo_train(model)
    assert len(elbo) == train_kwargs["max_epochs"]
    assert np.isfinite(elbo).all()
    latent = model.get_latent_representation()
    assert latent.shape == (mdata.n_obs, n_latent)
    assert np.isfinite(latent).all()
    assert np.isfinite(float(model.get_elbo()))


def test_latent_and_module_embeddings_shapes(trained_model):
    mdata = trained_model.adata
    latent = trained_model.get_latent_representation()
    assert latent.shape == (mdata.n_obs, trained_model.module.n_latent)

    expected_names = [
        *mdata[RNA_MOD].varm[MODULES_KEY].columns,
        *mdata[PROTEIN_MOD].varm[MODULES_KEY].columns,
    ]
    assert trained_model.module_names == expected_names
    tokens = trained_model.get_module_embeddings()
    assert tokens.shape == (mdata.n_obs, len(expected_names), trained_model.module.module_dim)
    assert np.isfinite(tokens).all()
    assert trained_model.get_module_embeddings(indices=[0, 3]).shape[0] == 2


def test_module_embeddings_refused_for_flat(mdata, setup_kwargs):
    _setup(mdata, setup_kwargs)
    model = MODTT(mdata, architecture="flat")
    with pytest.raises(ValueError, match="flat architecture has no modules"):
        model.get_module_embeddings()


def test_features_in_no_module_form_a_residual_module(mdata, setup_kwargs, train_kwargs):
    table = mdata[RNA_MOD].varm[MODULES_KEY].copy()
    unassigned = np.zeros(mdata[RNA_MOD].n_vars, dtype=bool)
    unassigned[[0, 4, 9, 17, 31, 60, 99]] = True
    table.loc[unassigned, :] = False
    assert table.any(axis=0).all()  # no module became empty
    mdata[RNA_MOD].varm[MODULES_KEY] = table
    _setup(mdata, setup_kwargs)

    expected = rf"{unassigned.sum()} of {len(unassigned)} features of '{RNA_MOD}' belong to no"
    with pytest.warns(UserWarning, match=expected):
        model = MODTT(mdata, module_dim=2)

    residual = f"{RNA_MOD}_residual"
    assert residual in model.module_names
    assert not any(name.startswith(f"{PROTEIN_MOD}_residual") for name in model.module_names)
    assert len(model.module_names) == _n_modules(mdata) + 1
    np.testing.assert_array_equal(model.module_membership_["rna"][residual], unassigned)
    model.train(**train_kwargs)
    assert np.isfinite(_elbo_train(model)).all()
    assert model.get_module_embeddings().shape == (mdata.n_obs, _n_modules(mdata) + 1, 2)


def test_overlapping_modules(mdata, setup_kwargs, train_kwargs):
    table = mdata[RNA_MOD].varm[MODULES_KEY].copy()
    first, second = table.columns[:2]
    overlap = np.flatnonzero(table[first].to_numpy())[:6]
    table.iloc[overlap, table.columns.get_loc(second)] = True  # now in both modules
    mdata[RNA_MOD].varm[MODULES_KEY] = table
    _setup(mdata, setup_kwargs)
    module_dim = 3
    model = MODTT(mdata, module_dim=module_dim)

    n_entries = int(table.to_numpy().sum() + mdata[PROTEIN_MOD].varm[MODULES_KEY].to_numpy().sum())
    n_modules = _n_modules(mdata)
    # One weight per (feature, module) membership and token dim, plus one bias per module token.
    expected = n_entries * module_dim + n_modules * module_dim
    assert model.parameter_counts()["module encoders"] == expected
    multiplicity = model.module.gene_decoder.feature_multiplicity.numpy()
    np.testing.assert_array_equal(multiplicity, table.to_numpy().sum(axis=1))

    model.train(**train_kwargs)
    assert np.isfinite(_elbo_train(model)).all()
    rna, _ = model.get_normalized_expression(return_numpy=True)
    assert np.isfinite(rna[:, overlap]).all()


def test_training_is_deterministic_under_scvi_seed(mdata_factory, setup_kwargs, train_kwargs):
    def fit(seed):
        scvi.settings.seed = seed
        mdata = _setup(mdata_factory(), setup_kwargs)
        model = MODTT(mdata, n_latent=4)
        model.train(**train_kwargs)
        return model.get_latent_representation()

    first, second, other_seed = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other_seed)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs",
    [
        {"architecture": "modular", "coupling": "tt"},
        {"architecture": "modular", "coupling": "dense", "gene_likelihood": "zinb"},
        {"architecture": "flat", "n_hidden": 10},
    ],
)
def test_parameter_counts_sum_to_total(mdata, setup_kwargs, kwargs):
    _setup(mdata, setup_kwargs)
    model = MODTT(mdata, **kwargs)
    counts = model.parameter_counts()
    total = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
    assert counts["total"] == total
    assert counts.drop("total").sum() == counts["total"]
    assert (counts.drop("total") > 0).all()
    if kwargs["architecture"] == "flat":
        assert "decoders" in counts and "encoder coupling" not in counts


def test_parameter_counts_without_label_prior(unlabelled_model):
    counts = unlabelled_model.parameter_counts()
    module = unlabelled_model.module
    assert counts["total"] == sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert counts.drop("total").sum() == counts["total"]
    assert "prior" not in counts  # the prior holds no trained parameters


def test_tt_coupling_smaller_than_dense_in_model(mdata, setup_kwargs):
    _setup(mdata, setup_kwargs)
    tt = MODTT(mdata, coupling="tt", module_dim=4, tt_rank=2).parameter_counts()
    dense = MODTT(mdata, coupling="dense", module_dim=4).parameter_counts()
    assert tt["encoder coupling"] < dense["encoder coupling"]
    assert tt["decoder coupling"] < dense["decoder coupling"]
    width = _n_modules(mdata) * 4
    assert dense["encoder coupling"] == width * width + width


# --------------------------------------------------------------------------- sampling


def test_sample_shapes_obs_and_counts(trained_model):
    real = trained_model.adata
    labels = _labels(real)
    n_per_label = 7
    synthetic = trained_model.sample(n_per_label=n_per_label, seed=0)

    assert isinstance(synthetic, MuData)
    assert set(synthetic.mod) == {RNA_MOD, PROTEIN_MOD}
    assert synthetic.n_obs == n_per_label * len(labels)
    for mod in (RNA_MOD, PROTEIN_MOD):
        assert synthetic[mod].var_names.equals(real[mod].var_names)
        assert synthetic[mod].n_obs == synthetic.n_obs
    counts = synthetic.obs["labels"].astype(str).value_counts()
    assert counts.to_dict() == dict.fromkeys(labels, n_per_label)
    assert synthetic.obs["synthetic"].astype(bool).all()
    assert set(synthetic.obs["batch"].astype(str)) <= set(real.obs["batch"].astype(str))

    for mod in (RNA_MOD, PROTEIN_MOD):
        x = _dense(synthetic[mod].X)
        assert (x >= 0).all()
        np.testing.assert_array_equal(x, np.round(x))
    assert _dense(synthetic[RNA_MOD].X).sum() > 0


def test_sample_normalized_layers_match_counts(trained_model):
    synthetic = trained_model.sample(n_per_label=5, seed=1)
    rna = _dense(synthetic[RNA_MOD].X).astype(np.float64)
    library = rna.sum(axis=1, keepdims=True)
    expected_rna = np.log1p(
        np.divide(rna * 1e4, library, where=library > 0, out=np.zeros_like(rna))
    )
    np.testing.assert_allclose(
        _dense(synthetic[RNA_MOD].layers["log1p_norm"]), expected_rna, rtol=1e-5, atol=1e-5
    )
    protein = np.log1p(_dense(synthetic[PROTEIN_MOD].X).astype(np.float64))
    expected_clr = protein - protein.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(
        _dense(synthetic[PROTEIN_MOD].layers["clr"]), expected_clr, rtol=1e-5, atol=1e-5
    )


def test_sample_requested_labels(trained_model):
    labels = _labels(trained_model.adata)
    requested = {labels[2]: 4, labels[0]: 9}
    synthetic = trained_model.sample(requested, seed=0)
    assert synthetic.n_obs == 13
    assert synthetic.obs["labels"].astype(str).value_counts().to_dict() == requested

    one = trained_model.sample(labels[1], n_per_label=6, seed=0)
    assert (one.obs["labels"].astype(str) == labels[1]).all() and one.n_obs == 6

    listed = trained_model.sample([labels[0], labels[1]], n_per_label=3, seed=0)
    assert listed.obs["labels"].astype(str).value_counts().to_dict() == {
        labels[0]: 3,
        labels[1]: 3,
    }

    in_batch = trained_model.sample(n_per_label=4, batch="batch_1", seed=0)
    assert (in_batch.obs["batch"].astype(str) == "batch_1").all()


def test_sample_unknown_label_lists_known_labels(trained_model):
    known = _labels(trained_model.adata)
    pattern = r"Unknown label.*'no_such_type'.*" + ".*".join(re.escape(repr(k)) for k in known)
    with pytest.raises(ValueError, match=pattern):
        trained_model.sample(["no_such_type"], n_per_label=3)
    with pytest.raises(ValueError, match="non-negative"):
        trained_model.sample({known[0]: -1})
    with pytest.raises(ValueError, match="Unknown batch 'no_such_batch'"):
        trained_model.sample(n_per_label=2, batch="no_such_batch")


def test_sample_as_anndata_concatenates_with_real_cells(trained_model):
    real_mdata = trained_model.adata
    synthetic = trained_model.sample(n_per_label=4, seed=2, return_anndata=True)
    as_mudata = trained_model.sample(n_per_label=4, seed=2)

    assert isinstance(synthetic, ad.AnnData)
    n_genes, n_proteins = real_mdata[RNA_MOD].n_vars, real_mdata[PROTEIN_MOD].n_vars
    assert synthetic.n_vars == n_genes + n_proteins
    assert list(synthetic.var["modality"]) == [RNA_MOD] * n_genes + [PROTEIN_MOD] * n_proteins
    expected_names = real_mdata[RNA_MOD].var_names.append(real_mdata[PROTEIN_MOD].var_names)
    assert synthetic.var_names.equals(expected_names)
    # Same seed, same cells, whichever container.
    np.testing.assert_array_equal(
        _dense(synthetic.X),
        np.hstack([_dense(as_mudata[RNA_MOD].X), _dense(as_mudata[PROTEIN_MOD].X)]),
    )

    real = ad.AnnData(
        X=sp.csr_matrix(
            np.hstack([_dense(real_mdata[RNA_MOD].X), _dense(real_mdata[PROTEIN_MOD].X)]).astype(
                np.float32
            )
        ),
        obs=real_mdata.obs[["labels", "batch"]].copy(),
        var=pd.DataFrame(index=expected_names),
    )
    both = ad.concat([real, synthetic], label="origin", keys=["real", "synthetic"])
    assert both.shape == (real.n_obs + synthetic.n_obs, real.n_vars)
    assert both.obs["origin"].value_counts().to_dict() == {
        "real": real.n_obs,
        "synthetic": synthetic.n_obs,
    }
    np.testing.assert_array_equal(_dense(both.X[: real.n_obs]), _dense(real.X))


def test_sample_seed_is_reproducible_and_local(trained_model):
    def cells(result):
        return np.hstack([_dense(result[RNA_MOD].X), _dense(result[PROTEIN_MOD].X)])

    torch.manual_seed(123)
    first = trained_model.sample(n_per_label=5, seed=11)
    torch.manual_seed(999)  # the global state must not matter
    second = trained_model.sample(n_per_label=5, seed=11)
    np.testing.assert_array_equal(cells(first), cells(second))
    pd.testing.assert_frame_equal(first.obs, second.obs)

    other = trained_model.sample(n_per_label=5, seed=12)
    assert not np.array_equal(cells(first), cells(other))

    state = torch.get_rng_state()
    trained_model.sample(n_per_label=5, seed=11)
    assert torch.equal(state, torch.get_rng_state())


def test_sample_without_labels_uses_standard_normal_prior(unlabelled_model):
    module = unlabelled_model.module
    # N(0, I) is fixed: training left it untouched.
    prior = module.label_prior
    assert not prior.mean.requires_grad and not prior.log_scale.requires_grad
    assert torch.count_nonzero(module.label_prior.mean) == 0
    assert torch.count_nonzero(module.label_prior.log_scale) == 0

    synthetic = unlabelled_model.sample(n_per_label=13, seed=0)
    assert synthetic.n_obs == 13
    assert "labels" not in synthetic.obs
    assert synthetic.obs["synthetic"].astype(bool).all()
    with pytest.raises(ValueError, match="without `labels_key`"):
        unlabelled_model.sample("label_0")


def test_generate_from_latent(trained_model):
    z = trained_model.get_latent_representation(indices=np.arange(6))
    labels = list(trained_model.adata.obs["labels"].astype(str)[:6])
    synthetic = trained_model.generate_from_latent(z, labels=labels, batch="batch_0", seed=0)
    assert synthetic.n_obs == 6
    assert list(synthetic.obs["labels"].astype(str)) == labels
    assert (synthetic.obs["batch"].astype(str) == "batch_0").all()
    with pytest.raises(ValueError, match="must have shape"):
        trained_model.generate_from_latent(z[:, :-1])
    with pytest.raises(ValueError, match="Got 5 labels for 6 latent codes"):
        trained_model.generate_from_latent(z, labels=labels[:5])


# --------------------------------------------------------------------------- save / load


def test_save_load_roundtrip(trained_model, mdata, tmp_path):
    path = tmp_path / "modtt"
    trained_model.save(path)
    # The module membership is stored with the model: the data need not carry it.
    for mod in (RNA_MOD, PROTEIN_MOD):
        del mdata[mod].varm[MODULES_KEY]
    loaded = MODTT.load(path, adata=mdata)

    assert loaded.module_names == trained_model.module_names
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), trained_model.get_latent_representation()
    )
    original, reloaded = (
        trained_model.sample(n_per_label=6, seed=4),
        loaded.sample(n_per_label=6, seed=4),
    )
    for mod in (RNA_MOD, PROTEIN_MOD):
        np.testing.assert_array_equal(_dense(original[mod].X), _dense(reloaded[mod].X))
    pd.testing.assert_frame_equal(original.obs, reloaded.obs)


@pytest.mark.parametrize("change", ["dropped", "renamed"])
def test_load_onto_different_features_raises(trained_model, mdata, tmp_path, change):
    path = tmp_path / "modtt"
    trained_model.save(path)
    if change == "dropped":
        mdata.mod[RNA_MOD] = mdata[RNA_MOD][:, 1:].copy()
        mdata.update()
        named = "gene_0"
    else:
        mdata[RNA_MOD].var_names = ["renamed_gene", *mdata[RNA_MOD].var_names[1:]]
        mdata.update()
        named = "renamed_gene"
    with (
        pytest.raises(ValueError, match=rf"features of modality '{RNA_MOD}' differ.*{named}"),
        pytest.warns(UserWarning, match="var_names"),
    ):
        MODTT.load(path, adata=mdata)


# --------------------------------------------------------------------------- outputs


def test_get_normalized_expression(trained_model):
    mdata = trained_model.adata
    library_size = 500.0
    rna, protein = trained_model.get_normalized_expression(library_size=library_size)
    assert isinstance(rna, pd.DataFrame) and isinstance(protein, pd.DataFrame)
    assert rna.shape == (mdata.n_obs, mdata[RNA_MOD].n_vars)
    assert protein.shape == (mdata.n_obs, mdata[PROTEIN_MOD].n_vars)
    assert rna.index.equals(mdata.obs_names) and protein.index.equals(mdata.obs_names)
    assert rna.columns.equals(mdata[RNA_MOD].var_names)
    assert protein.columns.equals(mdata[PROTEIN_MOD].var_names)
    assert trained_model.module.gene_likelihood.likelihood == "nb"
    np.testing.assert_allclose(rna.sum(axis=1), library_size, rtol=1e-4)
    assert (protein.to_numpy() >= 0).all()

    indices = [0, 5, 7]
    rna_subset, protein_subset = trained_model.get_normalized_expression(
        indices=indices, return_numpy=True
    )
    assert isinstance(rna_subset, np.ndarray)
    assert rna_subset.shape == (3, mdata[RNA_MOD].n_vars)
    assert protein_subset.shape == (3, mdata[PROTEIN_MOD].n_vars)

    rna_draws, _ = trained_model.get_normalized_expression(n_samples=3, indices=indices)
    assert rna_draws.shape == (3, mdata[RNA_MOD].n_vars)
    assert list(rna_draws.index) == list(mdata.obs_names[indices])


def test_get_normalized_expression_transform_batch(trained_model):
    rna_0, protein_0 = trained_model.get_normalized_expression(
        transform_batch="batch_0", return_numpy=True
    )
    rna_1, protein_1 = trained_model.get_normalized_expression(
        transform_batch="batch_1", return_numpy=True
    )
    assert not np.allclose(rna_0, rna_1)
    assert not np.allclose(protein_0, protein_1)
    rna_both, _ = trained_model.get_normalized_expression(
        transform_batch=["batch_0", "batch_1"], return_numpy=True
    )
    np.testing.assert_allclose(rna_both, (rna_0 + rna_1) / 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown batch 'batch_7'"):
        trained_model.get_normalized_expression(transform_batch="batch_7")


@pytest.mark.parametrize("n_samples", [1, 3])
def test_posterior_predictive_sample(trained_model, n_samples):
    mdata = trained_model.adata
    indices = np.arange(20)
    draws = trained_model.posterior_predictive_sample(indices=indices, n_samples=n_samples)
    assert list(draws) == [RNA_MOD, PROTEIN_MOD]  # keyed by modality, as totalVI's
    rna, protein = draws.values()
    tail = () if n_samples == 1 else (n_samples,)
    assert rna.shape == (len(indices), mdata[RNA_MOD].n_vars, *tail)
    assert protein.shape == (len(indices), mdata[PROTEIN_MOD].n_vars, *tail)
    for values in (rna, protein):
        assert (values >= 0).all()
        np.testing.assert_array_equal(values, np.round(values))


def test_elbo_and_reconstruction_error(trained_model):
    assert np.isfinite(float(trained_model.get_elbo()))
    errors = trained_model.get_reconstruction_error()
    assert any("rna" in key for key in errors)
    assert any("protein" in key for key in errors)
    assert all(np.isfinite(float(value)) for value in errors.values())


# --------------------------------------------------------------------------- no side effects


def _assert_same_frame(left: pd.DataFrame, right: pd.DataFrame) -> None:
    keep = [c for c in right.columns if not str(c).startswith("_scvi_")]
    assert [c for c in left.columns if not str(c).startswith("_scvi_")] == keep
    pd.testing.assert_frame_equal(left[keep], right[keep])


def _assert_same_uns(left: dict, right: dict) -> None:
    assert {k for k in left if not k.startswith("_scvi_")} == set(right)
    for key, value in right.items():
        np.testing.assert_equal(left[key], value)


def _assert_same_matrix(left, right) -> None:
    assert type(left) is type(right)
    assert left.dtype == right.dtype
    np.testing.assert_array_equal(_dense(left), _dense(right))


def test_user_mudata_is_not_changed(mdata, setup_kwargs, train_kwargs):
    mdata[RNA_MOD].layers["counts"] = mdata[RNA_MOD].X.copy()
    mdata[RNA_MOD].X = mdata[RNA_MOD].X * 2.0  # must not be read
    mdata[PROTEIN_MOD].uns["note"] = "kept"
    before = mdata.copy()
    assert not any(k.startswith("_scvi_") for k in before.uns)

    _setup(mdata, setup_kwargs, rna_layer="counts")
    model = MODTT(mdata, n_latent=4)
    model.train(**train_kwargs)
    model.get_latent_representation()
    model.sample(n_per_label=3, seed=0)
    model.sample(n_per_label=3, seed=0, return_anndata=True)
    model.get_normalized_expression(transform_batch="batch_1")
    model.posterior_predictive_sample(indices=np.arange(10))
    model.get_module_embeddings()

    assert list(mdata.mod) == list(before.mod)
    assert mdata.obs_names.equals(before.obs_names)
    _assert_same_frame(mdata.obs, before.obs)
    _assert_same_frame(mdata.var, before.var)
    _assert_same_uns(mdata.uns, before.uns)
    for mod in before.mod:
        now, then = mdata[mod], before[mod]
        _assert_same_matrix(now.X, then.X)
        assert set(now.layers) == set(then.layers)
        for layer in then.layers:
            _assert_same_matrix(now.layers[layer], then.layers[layer])
        pd.testing.assert_frame_equal(now.var, then.var)
        _assert_same_frame(now.obs, then.obs)
        _assert_same_uns(now.uns, then.uns)
        assert set(now.varm) == set(then.varm)
        for key in then.varm:
            if isinstance(then.varm[key], pd.DataFrame):
                pd.testing.assert_frame_equal(now.varm[key], then.varm[key])
            else:
                np.testing.assert_array_equal(now.varm[key], then.varm[key])
        assert set(now.obsm) == set(then.obsm)


def test_public_api_exports_model():
    assert scmodtt.MODTT is MODTT


def test_label_prior_tracks_label_centroids(trained_model):
    """The per-label prior is fitted to the posteriors of each label's cells (moment matching)."""
    latent = trained_model.get_latent_representation()
    codes = trained_model._label_codes()
    centroids = np.stack([latent[codes == c].mean(axis=0) for c in np.unique(codes)])
    prior_means = trained_model.module.label_prior.mean[np.unique(codes)].cpu().numpy()
    assert np.corrcoef(centroids.ravel(), prior_means.ravel())[0, 1] > 0.8


def test_another_setup_on_the_same_mudata_does_not_corrupt_training(
    mdata, setup_kwargs, train_kwargs
):
    _setup(mdata, setup_kwargs)
    model = MODTT(mdata)
    codes = model._label_codes().copy()
    assert len(np.unique(codes)) > 1
    # A second registration without labels rewrites the shared label codes to 0.
    MODTT.setup_mudata(mdata, modalities=setup_kwargs["modalities"])
    model.train(**train_kwargs)
    np.testing.assert_array_equal(model._label_codes(), codes)


def test_sample_skips_label_categories_without_cells(mdata, setup_kwargs, train_kwargs):
    labels = mdata.obs["labels"].astype("category")
    mdata.obs["labels"] = labels.cat.add_categories(["never_seen"])
    _setup(mdata, setup_kwargs)
    model = MODTT(mdata)
    model.train(**train_kwargs)
    synthetic = model.sample(n_per_label=3, seed=0)
    generated = set(synthetic.obs["labels"].astype(str))
    assert generated == set(labels.astype(str)) and "never_seen" not in generated


def test_gene_label_dispersion(mdata, setup_kwargs, train_kwargs):
    """One inverse dispersion per feature and label, chosen by each cell's label."""
    _setup(mdata, setup_kwargs)
    model = MODTT(mdata, n_latent=4, module_dim=2, dispersion="gene-label")
    n_labels = len(_labels(mdata))
    assert model.module.gene_likelihood.feature_parameter.shape == (n_labels, mdata[RNA_MOD].n_vars)
    model.train(**train_kwargs)
    # Every label's dispersions received gradient steps.
    theta = model.module.gene_likelihood.feature_parameter.detach()
    assert not torch.allclose(theta[0], theta[1])
    synthetic = model.sample(n_per_label=5, seed=0)
    assert synthetic.n_obs == 5 * n_labels
    assert np.isfinite(model.get_elbo())
    with pytest.raises(ValueError, match="`dispersion` must be one of"):
        MODTT(mdata, dispersion="cell")

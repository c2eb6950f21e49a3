"""Reference mapping: a query mapped onto a frozen MODTT reference (scArches semantics).

One reference is trained once (two batches of ``tiny_cite``, 200 cells, a few epochs) and saved;
the other 100 cells are the query, in a new batch. Query models train for 3 epochs. Modality
dropout and the masked CLR are tested in ``test_modality_dropout.py``.
"""

from __future__ import annotations

import logging

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from _query_common import (
    BATCH,
    BATCHES,
    LABEL_CODES,
    LABELS,
    PROT,
    PROTEINS,
    QUERY_BATCH,
    QUIET,
    REFERENCE_BATCHES,
    RNA,
    RNA_COUNTS,
    SEED,
    SETUP,
    all_cells_tensors,
    mapped,
    query_cells,
    reference_cells,
)
from scipy import sparse
from scvi import REGISTRY_KEYS

import scmodtt
from scmodtt.model._query import UNKNOWN_LABEL
from scmodtt.nn import TokenAdapter

QUERY_EPOCHS = 3
ADAPTER_RANK = 2


#: These tests set ``scvi.settings.seed``; later test files get the seed they had.
pytestmark = pytest.mark.usefixtures("scvi_seed_restored_after_module")


@pytest.fixture(scope="module")
def reference(tiny_ward, tmp_path_factory):
    """A trained reference (both samples, with modality dropout) and the folder it is saved in."""
    mdata = reference_cells(tiny_ward)
    scmodtt.MODTT.setup_mudata(mdata, **SETUP)
    scvi.settings.seed = SEED
    model = scmodtt.MODTT(
        mdata, module_dim=3, n_latent=6, protein_dropout=0.25, flow_n_hidden=16, flow_n_layers=1
    )
    model.train(max_epochs=2, flow_kwargs={"max_epochs": 20}, **QUIET)
    folder = tmp_path_factory.mktemp("query") / "reference"
    model.save(folder)
    return model, folder


@pytest.fixture
def query_mdata(tiny_ward):
    """A fresh, unregistered copy of the 100 query cells, all in batch ``QUERY_BATCH``."""
    return query_cells(tiny_ward)


@pytest.fixture(scope="module")
def adapted_query(tiny_ward, reference):
    """A rank-2 adapter query model, its state dict before training, and after 3 epochs."""
    model, _ = reference
    scvi.settings.seed = SEED
    query_model = mapped(query_cells(tiny_ward), model, adapter_rank=ADAPTER_RANK)
    before = {key: value.clone() for key, value in query_model.module.state_dict().items()}
    query_model.train(max_epochs=QUERY_EPOCHS, **QUIET)
    return query_model, before


def _batch_code(model, name: str) -> int:
    return int(np.flatnonzero(model._category_mapping(REGISTRY_KEYS.BATCH_KEY) == name)[0])


def _autoencoder_size(module) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not n.startswith("flow_prior."))


# ---------------------------------------------------------------------- what is frozen


def test_training_moves_only_the_new_batch_columns_and_the_adapter(reference, adapted_query):
    model, _ = reference
    query_model, before = adapted_query
    module = query_model.module
    after = module.state_dict()
    reference_state = model.module.state_dict()
    n_latent, n_reference = module.n_latent, len(REFERENCE_BATCHES)
    assert list(query_model._category_mapping(REGISTRY_KEYS.BATCH_KEY)) == [
        *REFERENCE_BATCHES,
        QUERY_BATCH,
    ]
    weight = "decoder_input.weight"
    new_column = n_latent + n_reference
    # Started as the reference: its decoder columns, the new one at the mean of the trained ones.
    torch.testing.assert_close(
        before[weight][:, new_column],
        reference_state[weight][:, n_latent:].mean(1),
        rtol=0,
        atol=1e-6,
    )
    # Reference batch columns frozen, the new batch's column trained.
    assert torch.equal(after[weight][:, :new_column], reference_state[weight])
    assert torch.equal(after[weight][:, :new_column], before[weight][:, :new_column])
    assert (after[weight][:, new_column] - before[weight][:, new_column]).abs().max() > 1e-5
    assert not torch.equal(after["token_adapter.up"], before["token_adapter.up"])
    assert not torch.equal(after["token_adapter.down"], before["token_adapter.down"])
    # Everything else (weights, label and flow priors, library statistics) bit for bit.
    n_compared = 0
    for key, value in after.items():
        if key == weight or key.startswith("token_adapter."):
            continue
        assert torch.equal(value, before[key]), key
        if key in reference_state and reference_state[key].shape == value.shape:
            if key.split(".")[-1] not in ("protein_observed", "adapted_batches", "priors_frozen"):
                assert torch.equal(value, reference_state[key]), key
                n_compared += 1
    assert n_compared > 20
    # The reference model itself is untouched, and keeps its own init parameters.
    saved = torch.load(reference[1] / "model.pt", weights_only=False)["model_state_dict"]
    for key, value in reference_state.items():
        assert torch.equal(value, saved[key]), key
    assert model.init_params_["non_kwargs"]["adapter_rank"] == 0
    assert query_model.init_params_["non_kwargs"]["adapter_rank"] == ADAPTER_RANK


def test_trained_parameter_fraction_counts_the_trainable_entries(
    tiny_ward, reference, adapted_query
):
    model, _ = reference
    assert model.trained_parameter_fraction == 1.0
    assert not model.is_query_model
    plain = mapped(query_cells(tiny_ward), model)
    assert plain.is_query_model
    module = plain.module
    width = module.n_modules * module.module_dim
    total = _autoencoder_size(module)
    assert plain.trained_parameter_fraction == pytest.approx(width / total)  # one new column
    assert 0 < plain.trained_parameter_fraction < 0.05
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable == ["decoder_input.weight"]
    # One backward pass: the gradient reaches exactly the new batch's column.
    module.train()
    _, _, losses = module(all_cells_tensors(plain))
    losses.loss.backward()
    grad = module.decoder_input.weight.grad
    assert int((grad != 0).sum()) == width
    assert bool((grad[:, module.n_latent + len(REFERENCE_BATCHES)] != 0).all())

    query_model, _ = adapted_query
    adapter = 2 * module.n_modules * module.module_dim * ADAPTER_RANK
    assert _autoencoder_size(query_model.module) == total + adapter
    assert query_model.trained_parameter_fraction == pytest.approx(
        (width + adapter) / (total + adapter)
    )
    assert query_model.trained_parameter_fraction > plain.trained_parameter_fraction

    unfrozen = mapped(query_cells(tiny_ward), model, unfrozen=True)
    assert unfrozen.trained_parameter_fraction == 1.0
    assert unfrozen.is_query_model
    assert all(
        p.requires_grad for n, p in unfrozen.module.named_parameters() if "flow_prior" not in n
    )


def test_a_reference_batch_in_the_query_is_a_trained_batch(tiny_ward, reference):
    model, _ = reference
    query = query_cells(tiny_ward)
    query.obs[BATCH] = np.where(np.arange(query.n_obs) < 50, "PBMC_2", QUERY_BATCH)
    query_model = mapped(query, model)
    mapping = list(query_model._category_mapping(REGISTRY_KEYS.BATCH_KEY))
    assert mapping == [*REFERENCE_BATCHES, QUERY_BATCH]  # no second "PBMC_2"
    module = query_model.module
    assert module.trained_batches.tolist() == [True, True, False]
    assert module.adapted_batches.tolist() == [True, False, True]
    weight = module.decoder_input.weight
    mask = weight._query_gradient_mask[:, module.n_latent :]
    assert mask[:, 0].sum() == 0 and mask[:, 1].sum() == 0 and bool((mask[:, 2] == 1).all())
    # The reference-only batch keeps the reference's ADT panel.
    assert torch.equal(module.protein_observed[1], model.module.protein_observed[1])
    # A query entirely of reference batches has nothing new to train.
    query.obs[BATCH] = "PBMC_3"
    assert mapped(query, model).trained_parameter_fraction == 0.0


# ---------------------------------------------------------------------- missing proteins


def test_rna_only_query_gets_masked_zero_proteins_and_imputed_ones(query_mdata, reference, caplog):
    model, _ = reference
    rna_only = mudata.MuData({RNA: query_mdata[RNA].copy()})
    rna_only.obs[BATCH] = QUERY_BATCH
    with caplog.at_level(logging.INFO, logger="scmodtt"):
        prepared = scmodtt.MODTT.prepare_query_mudata(rna_only, model)
    assert "no protein modality 'prot'" in caplog.text
    assert list(prepared.mod) == [RNA, PROT]
    assert prepared[PROT].var_names.equals(model.adata[PROT].var_names)
    assert sparse.csr_matrix(prepared[PROT].X).nnz == 0
    query_model = scmodtt.MODTT.load_query_data(prepared, model)
    module = query_model.module
    assert not bool(module.protein_observed[_batch_code(query_model, QUERY_BATCH)].any())
    tensors = all_cells_tensors(query_model)
    assert not bool(module.protein_mask(tensors[PROTEINS], tensors[BATCHES]).any())
    _, _, losses = module(tensors)
    assert torch.equal(
        losses.reconstruction_loss["reconstruction_loss_protein"], torch.zeros(rna_only.n_obs)
    )
    assert bool((losses.reconstruction_loss["reconstruction_loss_rna"] > 0).all())
    query_model.train(max_epochs=2, **QUIET)
    assert np.isfinite(query_model.history["elbo_train"].to_numpy(dtype=float)).all()

    _, proteins = query_model.get_normalized_expression(transform_batch="PBMC_2", return_numpy=True)
    assert proteins.shape == (rna_only.n_obs, model.adata[PROT].n_vars)
    assert np.isfinite(proteins).all() and (proteins > 0).all()
    assert (proteins.std(axis=0) > 0).mean() > 0.9  # varies over cells
    assert (proteins.std(axis=1) > 0).all()  # and over ADTs
    # Decoded at the reference cells' mean ADT library (per-label means over known labels).
    stats = model.module.library_prior.stats
    np.testing.assert_allclose(proteins.sum(1), np.exp(float(stats[:, 1, 0].mean())), rtol=1e-4)


def test_cells_without_adts_are_left_out_of_the_protein_likelihood(query_mdata, reference):
    model, _ = reference
    measured = query_mdata.obs_names[:50]
    query = mudata.MuData({RNA: query_mdata[RNA].copy(), PROT: query_mdata[PROT][measured].copy()})
    query.obs[BATCH] = QUERY_BATCH
    prepared = scmodtt.MODTT.prepare_query_mudata(query, model)
    counts = sparse.csr_matrix(prepared[PROT].X)
    row_totals = np.asarray(counts.sum(1)).ravel()
    assert (row_totals[:50] > 0).all() and (row_totals[50:] == 0).all()
    np.testing.assert_array_equal(
        counts[:50].toarray(), sparse.csr_matrix(query_mdata[PROT].X)[:50].toarray()
    )
    query_model = scmodtt.MODTT.load_query_data(prepared, model)
    tensors = all_cells_tensors(query_model)
    _, _, losses = query_model.module(tensors)
    protein_loss = losses.reconstruction_loss["reconstruction_loss_protein"]
    assert bool((protein_loss[:50] > 0).all())
    assert torch.equal(protein_loss[50:], torch.zeros(50))
    # The RNA-only cells' protein loss does not depend on what their (absent) ADTs would be:
    # `protein_mask` hides them, and the likelihood of any count there is multiplied by 0.
    mask = query_model.module.protein_mask(tensors[PROTEINS], tensors[BATCHES])
    assert not bool(mask[50:].any()) and bool(mask[:50].any())


def test_a_partial_panel_is_padded_masked_and_extra_features_dropped(
    query_mdata, reference, caplog
):
    model, _ = reference
    reference_adts = model.adata[PROT].var_names
    reference_genes = model.adata[RNA].var_names
    prot = query_mdata[PROT][:, reference_adts[5:]].copy()  # 5 ADTs not measured
    extra_adts = ad.AnnData(
        sparse.csr_matrix(np.ones((prot.n_obs, 2), dtype=np.float32)),
        obs=pd.DataFrame(index=prot.obs_names),
        var=pd.DataFrame(index=["EXTRA_1", "EXTRA_2"]),
    )
    rna = query_mdata[RNA][:, reference_genes[10:]].copy()
    extra_genes = ad.AnnData(
        sparse.csr_matrix(np.ones((rna.n_obs, 3), dtype=np.float32)),
        obs=pd.DataFrame(index=rna.obs_names),
        var=pd.DataFrame(index=["GENE_X", "GENE_Y", "GENE_Z"]),
    )
    query = mudata.MuData(
        {
            RNA: ad.concat([rna, extra_genes], axis=1, merge="first"),
            PROT: ad.concat([extra_adts, prot], axis=1, merge="first"),  # another order, too
        }
    )
    query.obs[BATCH] = QUERY_BATCH
    with caplog.at_level(logging.INFO, logger="scmodtt"):
        prepared = scmodtt.MODTT.prepare_query_mudata(query, model)
        query_model = scmodtt.MODTT.load_query_data(prepared, model)
    assert (
        "Modality 'prot': 43 of 48 reference ADTs found; 5 padded with zeros; 2 not in the "
        "reference left out (e.g. ['EXTRA_1', 'EXTRA_2'])" in caplog.text
    )
    assert (
        "Modality 'rna': 290 of 300 reference genes found; 10 padded with zeros; 3 not in the "
        "reference left out (e.g. ['GENE_X', 'GENE_Y', 'GENE_Z'])" in caplog.text
    )
    assert f"Batch '{QUERY_BATCH}':" in caplog.text and "treated as unmeasured" in caplog.text
    assert prepared[PROT].var_names.equals(reference_adts)
    assert prepared[RNA].var_names.equals(reference_genes)
    adts = sparse.csr_matrix(prepared[PROT].X).toarray()
    original = sparse.csr_matrix(query_mdata[PROT].X).toarray()
    assert (adts[:, :5] == 0).all()
    np.testing.assert_array_equal(adts[:, 5:], original[:, 5:])
    genes = sparse.csr_matrix(prepared[RNA].X).toarray()
    assert (genes[:, :10] == 0).all()
    np.testing.assert_array_equal(
        genes[:, 10:], sparse.csr_matrix(query_mdata[RNA].X).toarray()[:, 10:]
    )
    observed = query_model.module.protein_observed[_batch_code(query_model, QUERY_BATCH)]
    assert not bool(observed[:5].any())
    np.testing.assert_array_equal(observed[5:].numpy(), (original[:, 5:] > 0).any(0))
    assert int(observed.sum()) > 30


# ---------------------------------------------------------------------- labels


def test_query_labels_unknown_kept_and_samples_draw_reference_labels(
    query_mdata, reference, caplog
):
    model, _ = reference
    reference_labels = list(model._category_mapping(REGISTRY_KEYS.LABELS_KEY))
    unlabelled = query_mdata.copy()
    del unlabelled.obs[LABELS]
    prepared = scmodtt.MODTT.prepare_query_mudata(unlabelled, model)
    assert (prepared.obs[LABELS] == UNKNOWN_LABEL).all()
    assert LABELS not in unlabelled.obs

    labels = query_mdata.obs[LABELS].astype(object).to_numpy()
    labels[:10] = "Platelet"  # a label the reference does not have
    labels[10:20] = np.nan
    query_mdata.obs[LABELS] = labels
    with caplog.at_level(logging.INFO, logger="scmodtt"):
        prepared = scmodtt.MODTT.prepare_query_mudata(query_mdata, model)
        query_model = scmodtt.MODTT.load_query_data(prepared, model)
    assert (prepared.obs[LABELS].to_numpy()[:10] == "Platelet").all()
    assert (prepared.obs[LABELS].to_numpy()[10:20] == UNKNOWN_LABEL).all()
    np.testing.assert_array_equal(prepared.obs[LABELS].to_numpy()[20:], labels[20:])
    assert "['Platelet', 'unknown']" in caplog.text
    mapping = list(query_model._category_mapping(REGISTRY_KEYS.LABELS_KEY))
    assert mapping[: len(reference_labels)] == reference_labels
    assert set(mapping[len(reference_labels) :]) == {"Platelet", UNKNOWN_LABEL}
    module = query_model.module
    assert module.known_labels.tolist() == [True] * len(reference_labels) + [False, False]

    # The KL term scores unknown-label cells against a reference label, known ones their own.
    tensors = all_cells_tensors(query_model)
    inference = module.inference(tensors[RNA_COUNTS], tensors[PROTEINS], tensors[BATCHES])
    codes = tensors[LABEL_CODES].reshape(-1).long()
    prior_labels = module._prior_labels(inference["qz"], tensors[LABEL_CODES])
    known = codes < len(reference_labels)
    assert torch.equal(prior_labels[known], codes[known])
    assert bool((prior_labels[~known] < len(reference_labels)).all())
    assert int((~known).sum()) == 20

    query_model.train(max_epochs=2, **QUIET)
    # Priors frozen: the reference labels' Gaussians are the reference's.
    n_reference = len(reference_labels)
    for name, value in model.module.label_prior.state_dict().items():
        assert torch.equal(module.label_prior.state_dict()[name][:n_reference], value), name
    synthetic = query_model.sample(n_per_label=4, seed=0)
    assert set(synthetic.obs[LABELS].astype(str)) == set(reference_labels)
    with pytest.raises(ValueError, match=r"Unknown label\(s\) \['Platelet'\]"):
        query_model.sample(labels="Platelet")
    in_query_batch = query_model.sample(n_per_label=2, batch=QUERY_BATCH, seed=0)
    assert (in_query_batch.obs[BATCH] == QUERY_BATCH).all()


# ---------------------------------------------------------------------- bad input


def test_load_query_data_refuses_a_query_not_laid_out_like_the_reference(query_mdata, reference):
    model, _ = reference
    genes = model.adata[RNA].var_names
    fewer = query_mdata.copy()
    fewer.mod[RNA] = fewer[RNA][:, genes[10:]].copy()
    with pytest.raises(
        ValueError,
        match=r"genes in modality 'rna' are not the reference's: 10 of 300 reference genes are "
        r"missing .*0 are not in the reference.*prepare_query_mudata",
    ):
        scmodtt.MODTT.load_query_data(fewer, model)
    reordered = query_mdata.copy()
    reordered.mod[RNA] = reordered[RNA][:, genes[::-1]].copy()
    with pytest.raises(ValueError, match=r"0 of 300 .*and the order differs"):
        scmodtt.MODTT.load_query_data(reordered, model)
    no_protein = mudata.MuData({RNA: query_mdata[RNA].copy()})
    with pytest.raises(ValueError, match=r"no modality 'prot'.*prepare_query_mudata"):
        scmodtt.MODTT.load_query_data(no_protein, model)


def test_prepare_query_mudata_names_bad_input(query_mdata, reference):
    model, _ = reference
    no_rna = mudata.MuData({"genes": query_mdata[RNA].copy(), PROT: query_mdata[PROT].copy()})
    no_rna.obs[BATCH] = QUERY_BATCH
    with pytest.raises(ValueError, match=r"no RNA modality 'rna' \(it has \['genes', 'prot'\]\)"):
        scmodtt.MODTT.prepare_query_mudata(no_rna, model)

    other_names = query_mdata.copy()
    other_names.mod[RNA].var_names = [f"ENSG{i:011d}" for i in range(other_names[RNA].n_vars)]
    with pytest.raises(ValueError, match=r"None of the reference's 300 genes is in .* 'rna'"):
        scmodtt.MODTT.prepare_query_mudata(other_names, model)

    few = query_mdata.copy()
    names = np.asarray(few[RNA].var_names).copy()
    names[5:] = [f"other_{i}" for i in range(len(names) - 5)]
    few.mod[RNA].var_names = names
    with pytest.warns(UserWarning, match=r"only 5 of the reference's 300 genes"):
        scmodtt.MODTT.prepare_query_mudata(few, model)

    duplicated = query_mdata.copy()
    names = np.asarray(duplicated[RNA].var_names).copy()
    names[1] = names[0]
    duplicated.mod[RNA].var_names = names
    with pytest.raises(ValueError, match=r"'rna' has duplicated feature names"):
        scmodtt.MODTT.prepare_query_mudata(duplicated, model)

    no_batch = query_mdata.copy()
    del no_batch.obs[BATCH]
    with pytest.raises(KeyError, match=r"batch_key='sample'"):
        scmodtt.MODTT.prepare_query_mudata(no_batch, model)


def test_a_reference_of_another_model_class_is_refused(query_mdata, tmp_path):
    rna = query_mdata[RNA].copy()
    scvi.model.SCVI.setup_anndata(rna)
    scvi_model = scvi.model.SCVI(rna, n_hidden=8, n_latent=2, n_layers=1)
    scvi_model.train(max_epochs=1, **QUIET)
    scvi_model.save(tmp_path / "scvi")
    for given in (str(tmp_path / "scvi"), tmp_path / "scvi", scvi_model):
        with pytest.raises(ValueError, match=r"saved by SCVI, not MODTT.*SCVI.load_query_data"):
            scmodtt.MODTT.prepare_query_mudata(query_mdata, given)
        with pytest.raises(ValueError, match=r"saved by SCVI, not MODTT"):
            scmodtt.MODTT.load_query_data(query_mdata, given)


def test_a_saved_reference_folder_maps_as_the_model_does(query_mdata, reference):
    model, folder = reference
    from_model = scmodtt.MODTT.prepare_query_mudata(query_mdata, model)
    from_folder = scmodtt.MODTT.prepare_query_mudata(query_mdata.copy(), folder)  # a Path
    for mod in (RNA, PROT):
        assert from_folder[mod].var_names.equals(from_model[mod].var_names)
        assert (from_folder[mod].X != from_model[mod].X).nnz == 0
    pd.testing.assert_frame_equal(from_folder.obs, from_model.obs)
    in_memory = scmodtt.MODTT.load_query_data(from_model, model)
    saved = scmodtt.MODTT.load_query_data(from_folder, str(folder))
    state = in_memory.module.state_dict()
    assert state.keys() == saved.module.state_dict().keys()
    for key, value in saved.module.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert saved.trained_parameter_fraction == in_memory.trained_parameter_fraction


def test_prepare_query_mudata_leaves_its_input_alone(query_mdata, reference):
    model, _ = reference
    query = mudata.MuData(
        {RNA: query_mdata[RNA][:, ::2].copy(), PROT: query_mdata[PROT][:60, 3:].copy()}
    )
    query.obs[BATCH] = QUERY_BATCH
    query.obs["donor_age"] = 40
    before = {
        "obs": query.obs.copy(),
        "mods": list(query.mod),
        "var_names": {mod: query[mod].var_names.copy() for mod in query.mod},
        "obs_names": {mod: query[mod].obs_names.copy() for mod in query.mod},
        "X": {mod: sparse.csr_matrix(query[mod].X).toarray() for mod in query.mod},
        "mod_obs": {mod: query[mod].obs.copy() for mod in query.mod},
    }
    prepared = scmodtt.MODTT.prepare_query_mudata(query, model)
    assert prepared is not query
    assert (prepared.obs["donor_age"] == 40).all() and LABELS in prepared.obs
    pd.testing.assert_frame_equal(query.obs, before["obs"])
    assert list(query.mod) == before["mods"]
    for mod in query.mod:
        assert query[mod].var_names.equals(before["var_names"][mod])
        assert query[mod].obs_names.equals(before["obs_names"][mod])
        np.testing.assert_array_equal(sparse.csr_matrix(query[mod].X).toarray(), before["X"][mod])
        pd.testing.assert_frame_equal(query[mod].obs, before["mod_obs"][mod])
    assert prepared[RNA].n_vars == 300 and prepared[PROT].n_obs == query.n_obs


# ---------------------------------------------------------------------- adapter


def test_token_adapter_starts_as_identity_and_gates_cells():
    torch.manual_seed(0)
    adapter = TokenAdapter(n_modules=4, module_dim=3, rank=2)
    tokens = torch.randn(5, 4, 3)
    assert torch.equal(adapter(tokens), tokens)
    assert sum(p.numel() for p in adapter.parameters()) == 2 * 4 * 3 * 2
    with torch.no_grad():
        adapter.up.normal_()
    gate = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    adapted = adapter(tokens, gate)
    assert torch.equal(adapted[gate == 0], tokens[gate == 0])
    assert bool(((adapted[gate == 1] - tokens[gate == 1]).abs().amax((1, 2)) > 1e-3).all())
    torch.testing.assert_close(adapted[gate == 1], adapter(tokens)[gate == 1])
    with pytest.raises(ValueError, match="adapter rank must be a positive integer"):
        TokenAdapter(n_modules=4, module_dim=3, rank=0)


def test_the_adapter_changes_onlyquery_cells(tiny_ward, reference, adapted_query):
    model, _ = reference
    query_model, before = adapted_query
    frozen = mapped(query_cells(tiny_ward), model)
    untrained = mapped(query_cells(tiny_ward), model, adapter_rank=ADAPTER_RANK)
    frozen_tokens = frozen.get_module_embeddings()
    assert torch.equal(
        untrained.module.token_adapter.up, torch.zeros_like(before["token_adapter.up"])
    )
    np.testing.assert_array_equal(untrained.get_module_embeddings(), frozen_tokens)
    # Trained: the query cells' tokens move.
    adapted_tokens = query_model.get_module_embeddings()
    assert np.abs(adapted_tokens - frozen_tokens).max() > 1e-5
    # Reference cells, embedded by the query model, keep the reference's tokens and latent.
    reference_mdata = reference_cells(tiny_ward)
    np.testing.assert_array_equal(
        query_model.get_module_embeddings(reference_mdata), model.get_module_embeddings()
    )
    np.testing.assert_allclose(
        query_model.get_latent_representation(reference_mdata),
        model.get_latent_representation(),
        rtol=0,
        atol=1e-6,
    )


def test_query_mapping_is_deterministic_under_a_seed(tiny_ward, reference, adapted_query):
    model, _ = reference
    query_model, _ = adapted_query
    scvi.settings.seed = SEED
    again = mapped(query_cells(tiny_ward), model, adapter_rank=ADAPTER_RANK)
    again.train(max_epochs=QUERY_EPOCHS, **QUIET)
    np.testing.assert_array_equal(
        again.get_latent_representation(), query_model.get_latent_representation()
    )
    scvi.settings.seed = SEED + 1
    other = mapped(query_cells(tiny_ward), model, adapter_rank=ADAPTER_RANK)
    other.train(max_epochs=QUERY_EPOCHS, **QUIET)
    assert not np.array_equal(
        other.get_latent_representation(), query_model.get_latent_representation()
    )

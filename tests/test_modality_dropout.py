"""Modality dropout: ADTs hidden from the encoder in training so that RNA-only cells map, and the
masked CLR that encodes cells with part of the panel measured."""

from __future__ import annotations

import warnings

import mudata
import pytest
import scvi
import torch
from _query_common import (
    BATCH,
    BATCHES,
    PROT,
    PROTEINS,
    QUERY_BATCH,
    QUIET,
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

import scmodtt
from scmodtt.module._transforms import clr, masked_clr

#: These tests set ``scvi.settings.seed``; later test files get the seed they had.
pytestmark = pytest.mark.usefixtures("scvi_seed_restored_after_module")


@pytest.fixture
def query_mdata(tiny_ward):
    """A fresh, unregistered copy of the query cells, all in batch ``QUERY_BATCH``."""
    return query_cells(tiny_ward)


def test_masked_clr_centres_on_the_measured_entries():
    counts = torch.tensor([[3.0, 0.0, 7.0, 1.0], [2.0, 5.0, 0.0, 4.0]])
    torch.testing.assert_close(
        masked_clr(counts, torch.ones(2, 4, dtype=torch.bool)), clr(counts)[0]
    )
    # A per-cell (n, 1) mask, as modality dropout passes it: a kept cell's full CLR, or zeros.
    per_cell = masked_clr(counts, torch.tensor([[True], [False]]))
    torch.testing.assert_close(per_cell[0], clr(counts)[0][0])
    assert torch.equal(per_cell[1], torch.zeros(4))
    mask = torch.tensor([[True, True, False, True], [True, False, True, True]])
    values = masked_clr(counts, mask)
    assert torch.equal(values[~mask], torch.zeros(2))
    torch.testing.assert_close(values[0, mask[0]], clr(counts[0:1, mask[0]])[0][0])
    # Unmeasured entries do not change the measured ones' values.
    torch.testing.assert_close(masked_clr(counts + 100.0 * ~mask, mask), values)


# ---------------------------------------------------------------------- modality dropout


def _encoder_means(module, tensors, y, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return module.inference(tensors[RNA_COUNTS], y, tensors[BATCHES])["qz"].loc


@pytest.mark.parametrize(
    ("dropout", "full_panel"), [(0.0, True), (0.5, True), (0.5, False)], ids=str
)
def test_modality_dropout_hides_adts_from_the_encoder_in_training(tiny_ward, dropout, full_panel):
    mdata = reference_cells(tiny_ward)
    if full_panel:  # every ADT detected in every batch: the per-cell dropout mask alone
        mdata.mod[PROT].X = sparse.csr_matrix(mdata[PROT].X.toarray() + 1)
    scmodtt.MODTT.setup_mudata(mdata, **SETUP)
    model = scmodtt.MODTT(mdata, module_dim=3, n_latent=6, protein_dropout=dropout)
    module, tensors = model.module, all_cells_tensors(model)
    assert bool(module.protein_observed.all()) == full_panel
    y = tensors[PROTEINS]
    other_y = torch.poisson(torch.full_like(y, 20.0))
    with torch.no_grad():
        module.eval()
        eval_means = _encoder_means(module, tensors, y)
        assert bool(
            ((eval_means - _encoder_means(module, tensors, other_y)).abs().amax(1) > 0).all()
        )
        module.train()
        train_means = _encoder_means(module, tensors, y)
        changed = (train_means - _encoder_means(module, tensors, other_y)).abs().amax(1) > 0
        torch.manual_seed(0)
        kept = (torch.rand(len(y), 1) >= dropout).reshape(-1)
    assert torch.equal(changed, kept)  # a hidden cell's code does not see its ADTs
    if dropout:
        assert 0.3 < float((~kept).float().mean()) < 0.7
    # A kept cell is encoded as at inference.
    torch.testing.assert_close(train_means[kept], eval_means[kept], rtol=0, atol=1e-5)


def test_protein_dropout_must_be_below_one(tiny_ward):
    mdata = reference_cells(tiny_ward)
    scmodtt.MODTT.setup_mudata(mdata, **SETUP)
    with pytest.raises(ValueError, match=r"`protein_dropout` must be in \[0, 1\), got 1.0"):
        scmodtt.MODTT(mdata, protein_dropout=1.0)


def test_mapping_rna_only_cells_onto_a_reference_without_dropout_warns(tiny_ward, query_mdata):
    mdata = reference_cells(tiny_ward)
    scmodtt.MODTT.setup_mudata(mdata, **SETUP)
    scvi.settings.seed = SEED
    no_dropout = scmodtt.MODTT(mdata, module_dim=2, n_latent=4)
    no_dropout.train(max_epochs=1, flow_prior=False, **QUIET)
    rna_only = mudata.MuData({RNA: query_mdata[RNA].copy()})
    rna_only.obs[BATCH] = QUERY_BATCH
    with pytest.warns(UserWarning, match=r"protein_dropout=0.*100 query cells have no ADT counts"):
        mapped(rna_only, no_dropout)
    with warnings.catch_warnings():  # query cells with their ADTs: nothing to warn about
        warnings.simplefilter("error", UserWarning)
        mapped(query_mdata, no_dropout)

"""scvi-tools' posterior predictive checks on MODTT, beside totalVI, for both modalities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch
from conftest import MODALITIES, PROTEIN_MOD, RNA_MOD
from scvi.criticism import PosteriorPredictiveCheck

N_SAMPLES = 3


@pytest.fixture(scope="module")
def totalvi(_base_mdata):
    """totalVI on its own copy of the MODTT fixtures' cells (same cells, same order)."""
    mdata = _base_mdata.copy()
    scvi.model.TOTALVI.setup_mudata(mdata, batch_key="batch", modalities=dict(MODALITIES))
    model = scvi.model.TOTALVI(mdata, n_latent=4)
    model.train(
        max_epochs=2, enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1
    )
    return model


def _raw(model, mod) -> np.ndarray:
    counts = model.adata[mod].X
    return np.asarray(counts.toarray() if sp.issparse(counts) else counts, dtype=np.float64)


@pytest.mark.parametrize("mod", [RNA_MOD, PROTEIN_MOD])
def test_ppc_runs_on_modtt_and_totalvi(trained_model, totalvi, mod):
    models = {"MODTT": trained_model, "totalVI": totalvi}
    with torch.random.fork_rng():
        torch.manual_seed(5)
        ppc = PosteriorPredictiveCheck(
            trained_model.adata, models, n_samples=N_SAMPLES, modality=mod
        )
        torch.manual_seed(5)  # MODTT draws first, at the batch size the check uses
        draws = trained_model.posterior_predictive_sample(
            trained_model.adata, n_samples=N_SAMPLES, batch_size=ppc.batch_size
        )[mod]
    # The check holds MODTT's own draws of the asked modality, aligned with the observed cells.
    np.testing.assert_array_equal(ppc.samples_dataset["MODTT"].to_numpy(), draws)
    assert list(ppc.samples_dataset["features"].values) == list(trained_model.adata[mod].var_names)

    ppc.coefficient_of_variation("cells")  # per feature, across cells
    ppc.coefficient_of_variation("features")  # per cell, across features
    ppc.zero_fraction()
    n_cells, n_features = trained_model.adata[mod].shape
    for metric, n_rows in (
        ("cv_gene", n_features),
        ("cv_cell", n_cells),
        ("zero_fraction", n_features),
    ):
        table = ppc.metrics[metric]
        assert table.shape == (n_rows, 3) and set(table.columns) == {"MODTT", "totalVI", "Raw"}
        assert np.isfinite(table[["MODTT", "totalVI"]].to_numpy()).all(), metric

    raw = _raw(trained_model, mod)
    np.testing.assert_allclose(ppc.metrics["cv_gene"]["Raw"], raw.std(0) / raw.mean(0), rtol=1e-6)
    # scvi-tools' "zero_fraction" is the fraction of NON-zero counts per feature.
    np.testing.assert_allclose(ppc.metrics["zero_fraction"]["Raw"], (raw != 0).mean(0))
    np.testing.assert_allclose(
        ppc.metrics["zero_fraction"]["MODTT"], (draws != 0).mean(axis=(0, 2)), rtol=1e-6
    )
    assert (ppc.metrics["zero_fraction"][["MODTT", "totalVI"]].to_numpy() <= 1).all()


def test_ppc_calibration_on_a_subset_of_cells(trained_model):
    indices = np.arange(0, 400, 8)
    # scvi-tools 1.4.2's calibration_error reads the model named "model1" (whatever the others
    # are called): one model per check.
    ppc = PosteriorPredictiveCheck(
        trained_model.adata,
        {"model1": trained_model},
        n_samples=N_SAMPLES,
        modality=PROTEIN_MOD,
        indices=indices,
    )
    assert list(ppc.samples_dataset["cells"].values) == list(trained_model.adata.obs_names[indices])
    ppc.coefficient_of_variation("features")
    assert ppc.metrics["cv_cell"].shape == (len(indices), 2)
    ppc.calibration_error()
    error = ppc.metrics["calibration"].loc["features", "model1"]
    # Seven central intervals, each contributing a squared coverage error of at most 1.
    assert np.isfinite(error) and 0 <= error <= 7

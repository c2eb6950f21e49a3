"""Training MODTT from an on-disk store (backed MuData) is training in memory, at bounded memory.

Tolerance of the equality test: the autoencoder, its label prior and history are identical bit
for bit; the flow prior agrees to 1e-4, because its standardisation is a float64 mean streamed
from disk instead of torch's float32 mean of the values in memory.
"""

from __future__ import annotations

import tracemalloc

import h5py
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch
from anndata import AnnData
from anndata.abc import CSRDataset
from conftest import MODALITIES, MODULES_KEY, PROTEIN_MOD, RNA_MOD, _random_modules

import scmodtt
from scmodtt.io import read_h5mu_store, write_h5mu_store

mudata.set_options(pull_on_update=False)

SETUP = {"labels_key": "labels", "batch_key": "batch", "modalities": dict(MODALITIES)}
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def _sparse_copy(mdata: mudata.MuData) -> mudata.MuData:
    """The fixture's cells with CSR counts in ``.X`` (what a store holds)."""
    mdata = mdata.copy()
    for mod in mdata.mod:
        mdata[mod].X = sp.csr_matrix(np.asarray(mdata[mod].X, dtype=np.float32))
    return mdata


def _chunks(mdata: mudata.MuData, size: int):
    return (mdata[start : start + size].copy() for start in range(0, mdata.n_obs, size))


@pytest.fixture(scope="module")
def paired(_base_mdata):
    return _sparse_copy(_base_mdata)


@pytest.fixture(scope="module")
def store(paired, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "cells.h5mu"
    return write_h5mu_store(path, _chunks(paired, 150))


def test_store_holds_the_cells_and_reads_backed(store, paired):
    backed = read_h5mu_store(store)
    assert backed.isbacked
    for mod in paired.mod:
        assert isinstance(backed[mod].X, CSRDataset)  # on disk, read by rows
        on_disk = backed[mod].X[np.arange(backed.n_obs)]
        assert (on_disk != paired[mod].X).nnz == 0
        pd.testing.assert_frame_equal(backed[mod].obs, paired[mod].obs)
        for key in paired[mod].varm:  # the module tables
            pd.testing.assert_frame_equal(backed[mod].varm[key], paired[mod].varm[key])
    pd.testing.assert_frame_equal(backed.obs, paired.obs)


def _trained(data, seed: int = 0):
    scvi.settings.seed = seed
    scmodtt.MODTT.setup_mudata(data, **SETUP)
    model = scmodtt.MODTT(data, coupling="tt", module_dim=3, n_latent=8)
    model.train(max_epochs=3, flow_kwargs={"max_epochs": 5}, **QUIET)
    return model


def test_training_from_disk_equals_training_in_memory(store, paired):
    in_memory = _trained(paired.copy())
    on_disk = _trained(read_h5mu_store(store))
    np.testing.assert_array_equal(in_memory.train_indices, on_disk.train_indices)
    for column in ("elbo_train", "elbo_validation"):
        np.testing.assert_array_equal(
            in_memory.history[column].to_numpy(), on_disk.history[column].to_numpy()
        )
    memory_state, disk_state = in_memory.module.state_dict(), on_disk.module.state_dict()
    for key, value in memory_state.items():  # the flow prior included: bit for bit
        assert torch.equal(disk_state[key], value), key
    np.testing.assert_array_equal(
        in_memory.get_latent_representation(), on_disk.get_latent_representation()
    )
    for prior in ("flow", "gaussian"):
        drawn = [m.sample(n_per_label=30, seed=3, prior=prior) for m in (in_memory, on_disk)]
        assert (drawn[0][RNA_MOD].X != drawn[1][RNA_MOD].X).nnz == 0, prior
    assert on_disk.is_flow_prior_fitted


# ---------------------------------------------------------------------- memory
def _wide_cells(n_cells: int, seed: int) -> mudata.MuData:
    """Paired counts with 1,000 genes (20% non-zero), 20 ADTs, 3 labels, 2 batches."""
    rng = np.random.default_rng(seed)
    rna = sp.random(n_cells, 1000, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    rna.data = np.ceil(rna.data * 5)
    protein = sp.csr_matrix(rng.poisson(20, (n_cells, 20)).astype(np.float32))
    obs = pd.DataFrame(
        {
            "labels": rng.choice(["a", "b", "c"], n_cells),
            "batch": rng.choice(["s1", "s2"], n_cells),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    mods = {}
    for seed_offset, (mod, counts) in enumerate(((RNA_MOD, rna), (PROTEIN_MOD, protein))):
        names = pd.Index([f"{mod}{j}" for j in range(counts.shape[1])])
        adata = AnnData(counts, obs=obs.copy(), var=pd.DataFrame(index=names))
        adata.varm[MODULES_KEY] = _random_modules(names, 4, mod, seed_offset)
        mods[mod] = adata
    mdata = mudata.MuData(mods)
    mdata.obs = obs.copy()
    return mdata


def _traced_peak(path, on_disk: bool) -> int:
    """Bytes of numpy/Python memory at the peak of set-up, one epoch and a flow fit."""
    tracemalloc.start()
    try:
        data = read_h5mu_store(path) if on_disk else mudata.read_h5mu(path)
        scvi.settings.seed = 0
        scmodtt.MODTT.setup_mudata(data, **SETUP)
        model = scmodtt.MODTT(data, module_dim=2, n_latent=4, flow_n_hidden=16)
        model.train(max_epochs=1, early_stopping=False, flow_kwargs={"max_epochs": 1}, **QUIET)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_follows_the_batch_not_the_cells(tmp_path, monkeypatch):
    """The small version of ``scripts/measure_ondisk_rss.py``: 1,500 against 6,000 cells.

    tracemalloc sees what numpy, h5py, scipy and Python allocate (the data and everything
    computed from it), not torch's own buffers, which follow the batch size anyway.
    """
    # Blocks of 64 rows, so that both stores stream in many blocks (at the default, one block
    # would hold either store whole).
    monkeypatch.setattr(scmodtt.model._ondisk, "BLOCK_ELEMENTS", 64 * 1020)
    # Posteriors collected 128 cells at a time, as training reads them: both sizes then take
    # many full mini-batches (at the default of 1,024, the small store takes one and a rest).
    monkeypatch.setattr(scmodtt.model._flow, "POSTERIOR_BATCH_SIZE", 128)
    sizes = (1500, 6000)
    paths = [write_h5mu_store(tmp_path / f"{n}.h5mu", [_wide_cells(n, n)]) for n in sizes]
    data_bytes_per_cell = 0.2 * 1000 * 8  # float32 counts + int32 column indices
    growth = {}
    for on_disk in (True, False):
        small, large = (_traced_peak(path, on_disk) for path in paths)
        growth[on_disk] = (large - small) / (sizes[1] - sizes[0])
    # In memory, every extra cell costs its counts at least once; on disk only its index entries
    # (names, codes, row offsets: a few hundred bytes).
    assert growth[False] > data_bytes_per_cell
    assert growth[True] < 0.25 * data_bytes_per_cell
    assert growth[True] < 0.1 * growth[False]


# ---------------------------------------------------------------------- bad stores
def _write_unpaired(path, paired, protein_cells):
    mods = {RNA_MOD: paired[RNA_MOD].copy(), PROTEIN_MOD: paired[PROTEIN_MOD][protein_cells].copy()}
    mudata.MuData(mods).write(path)


@pytest.mark.parametrize(
    ("cells", "detail"),
    [
        (slice(0, 300), "400 cells in 'rna', 300 in 'protein_expression'"),
        (slice(None, None, -1), "first difference at position 0"),
    ],
)
def test_store_whose_modalities_disagree_on_cells_is_refused(tmp_path, paired, cells, detail):
    path = tmp_path / "unpaired.h5mu"
    _write_unpaired(path, paired, cells)
    with pytest.raises(ValueError, match="Modalities 'rna' and 'protein_expression'") as error:
        read_h5mu_store(path)
    assert detail in str(error.value)
    # Opened by mudata directly, set-up refuses it as well.
    backed = mudata.read_h5mu(path, backed=True)
    with pytest.raises(ValueError, match="disagree on cells"):
        scmodtt.MODTT.setup_mudata(backed, **SETUP)


def test_store_whose_counts_disagree_with_the_features_is_refused(tmp_path, store):
    path = tmp_path / "inconsistent.h5mu"
    path.write_bytes(store.read_bytes())
    with h5py.File(path, "a") as file:
        n_cells, n_proteins = file[f"mod/{PROTEIN_MOD}/X"].attrs["shape"]
        file[f"mod/{PROTEIN_MOD}/X"].attrs["shape"] = (n_cells, n_proteins - 1)
    with pytest.raises(ValueError, match=f"modality '{PROTEIN_MOD}' are 400 cells × 99 features"):
        read_h5mu_store(path)


def test_csc_store_is_refused(tmp_path, paired):
    path = tmp_path / "csc.h5mu"
    mdata = paired.copy()
    mdata[RNA_MOD].X = sp.csc_matrix(mdata[RNA_MOD].X)
    mdata.write(path)
    with pytest.raises(ValueError, match="modality 'rna' are stored as 'csc_matrix'"):
        read_h5mu_store(path)


def test_chunks_with_other_features_or_repeated_cells_are_refused(tmp_path, paired):
    first = paired[:200].copy()
    other = paired[200:].copy()
    other.mod[PROTEIN_MOD] = other[PROTEIN_MOD][:, other[PROTEIN_MOD].var_names[1:]].copy()
    path = tmp_path / "chunks.h5mu"
    with pytest.raises(ValueError, match=f"features of modality '{PROTEIN_MOD}' in chunk 1"):
        write_h5mu_store(path, [first, other])
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()
    with pytest.raises(ValueError, match="occur in more than one chunk"):
        write_h5mu_store(path, [first, first.copy()])
    write_h5mu_store(path, [first])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_h5mu_store(path, [first])

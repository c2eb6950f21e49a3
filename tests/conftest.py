"""Shared fixtures: small CITE-seq-like MuData with module tables, and small trained MODTT models.

``scvi.data.synthetic_iid`` draws new random counts on every call, so the data is built once per
session and every test gets its own copy (``mdata`` / ``mdata_factory``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scvi
from _query_common import tiny_with_modules

#: Modality names of ``scvi.data.synthetic_iid(return_mudata=True)``.
RNA_MOD = "rna"
PROTEIN_MOD = "protein_expression"
MODALITIES = {"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD}
MODULES_KEY = "modtt_modules"
#: Hard modules written by the fixtures: (gene modules, protein modules).
N_MODULES = {RNA_MOD: 5, PROTEIN_MOD: 3}
#: Fast-training keyword arguments for ``MODTT.train``.
TRAIN_KWARGS = {
    "max_epochs": 2,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "log_every_n_steps": 1,
    # The flow prior's second stage, kept short: its own tests fit it properly.
    "flow_kwargs": {"max_epochs": 20},
}


def _random_modules(var_names: pd.Index, n_modules: int, prefix: str, seed: int) -> pd.DataFrame:
    """Boolean membership table: each feature in exactly one of ``n_modules`` non-empty modules."""
    rng = np.random.default_rng(seed)
    assignment = rng.permutation(np.arange(len(var_names)) % n_modules)
    return pd.DataFrame(
        {f"{prefix}_M{m}": assignment == m for m in range(n_modules)}, index=var_names.copy()
    )


@pytest.fixture(scope="session")
def _base_mdata():
    import scvi

    mdata = scvi.data.synthetic_iid(return_mudata=True)
    for seed, (mod_name, n_modules) in enumerate(N_MODULES.items()):
        adata = mdata[mod_name]
        adata.varm[MODULES_KEY] = _random_modules(adata.var_names, n_modules, mod_name, seed)
    return mdata


@pytest.fixture
def mdata(_base_mdata):
    """A fresh, unregistered copy of the session's MuData (400 cells, 3 labels, 2 batches)."""
    return _base_mdata.copy()


@pytest.fixture
def mdata_factory(_base_mdata):
    """Call to get a fresh, unregistered copy of the session's MuData (several per test)."""
    return _base_mdata.copy


@pytest.fixture(scope="session")
def setup_kwargs():
    """``setup_mudata`` arguments for the fixtures' MuData, with labels and batches."""
    return {"labels_key": "labels", "batch_key": "batch", "modalities": dict(MODALITIES)}


@pytest.fixture
def train_kwargs():
    """Keyword arguments of ``MODTT.train`` for a few quick epochs without progress output."""
    return dict(TRAIN_KWARGS)


@pytest.fixture(scope="session")
def trained_model(_base_mdata, setup_kwargs):
    """A modular TT MODTT (nb / nbmixture) with labels and batches, trained for a few epochs.

    Shared by tests that only read from it; do not train it further or change its data.
    """
    import scmodtt

    mdata = _base_mdata.copy()
    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, coupling="tt", module_dim=3, n_latent=8)
    model.train(**TRAIN_KWARGS)
    return model


@pytest.fixture(scope="session")
def unlabelled_model(_base_mdata):
    """A MODTT set up without ``labels_key`` (prior ``N(0, I)``), trained for a few epochs."""
    import scmodtt

    mdata = _base_mdata.copy()
    scmodtt.MODTT.setup_mudata(mdata, batch_key="batch", modalities=dict(MODALITIES))
    model = scmodtt.MODTT(mdata, coupling="dense", n_latent=6)
    model.train(**TRAIN_KWARGS)
    return model


@pytest.fixture(scope="module")
def scvi_seed_restored_after_module():
    """For modules that set ``scvi.settings.seed``: later test files get the seed they had."""
    seed = scvi.settings.seed
    yield
    scvi.settings.seed = seed


@pytest.fixture(scope="module")
def tiny_ward():
    """``tiny_cite`` with Ward modules (6 gene, 3 ADT modules): the query tests' data."""
    return tiny_with_modules()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` (``make test``) every notebook is its own xdist group.

    The notebooks take about 9 of the suite's 12 minutes; grouped by file they all ran on one
    worker. Every other test stays grouped with its file, whose module fixtures it shares.
    """
    for item in items:
        notebook = item.get_closest_marker("notebooks") is not None
        group = item.nodeid if notebook else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))

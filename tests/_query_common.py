"""What the reference-mapping tests share: ``tiny_cite`` split into reference and query cells,
the reference's setup, and readers of a model's tensors."""

from __future__ import annotations

import mudata
import numpy as np
import torch
from scvi import REGISTRY_KEYS

import scmodtt

RNA, PROT = "rna", "prot"
LABELS, BATCH = "cell_type", "sample"
REFERENCE_BATCHES = ["PBMC_2", "PBMC_3"]
QUERY_BATCH = "new_donor"
SETUP = {
    "labels_key": LABELS,
    "batch_key": BATCH,
    "modalities": {"rna_layer": RNA, "protein_layer": PROT},
}
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
SEED = 0
RNA_COUNTS, PROTEINS = REGISTRY_KEYS.X_KEY, REGISTRY_KEYS.PROTEIN_EXP_KEY
BATCHES, LABEL_CODES = REGISTRY_KEYS.BATCH_KEY, REGISTRY_KEYS.LABELS_KEY


def tiny_with_modules() -> mudata.MuData:
    """``tiny_cite`` with Ward modules (6 gene, 3 ADT modules)."""
    mudata.set_options(pull_on_update=False)
    mdata = scmodtt.datasets.tiny_cite()
    scmodtt.pp.find_modules(mdata, n_modules={RNA: 6, PROT: 3}, method="ward")
    return mdata


def reference_cells(tiny: mudata.MuData) -> mudata.MuData:
    """Two of every three cells, in their own two batches."""
    return tiny[np.arange(tiny.n_obs) % 3 != 0].copy()


def query_cells(tiny: mudata.MuData) -> mudata.MuData:
    """The other cells, all in batch ``QUERY_BATCH``, unregistered."""
    mdata = tiny[np.arange(tiny.n_obs) % 3 == 0].copy()
    mdata.obs[BATCH] = QUERY_BATCH
    return mdata


def mapped(query: mudata.MuData, reference_model, **kwargs):
    """``query`` prepared for and loaded onto ``reference_model``."""
    prepared = scmodtt.MODTT.prepare_query_mudata(query, reference_model)
    return scmodtt.MODTT.load_query_data(prepared, reference_model, **kwargs)


def all_cells_tensors(model, adata=None) -> dict[str, torch.Tensor]:
    """All cells of ``adata`` (default: the model's data) as one mini-batch."""
    adata = model.adata if adata is None else adata
    return next(iter(model._make_data_loader(adata=adata, batch_size=adata.n_obs)))

"""The models compared by the benchmark, each built and trained on a registered copy of the data.

Every builder takes the training MuData (raw counts in ``.X`` of ``rna`` and ``prot``; modules in
``.varm`` for MODTT), registers it the way that model expects, and returns the model untrained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import scipy.sparse as sp
import scvi
from mudata import MuData

from ..model import MODTT

RNA_MOD, PROTEIN_MOD = "rna", "prot"
#: Dense copy of the protein counts: totalVI's empirical protein prior fails on sparse input.
DENSE_PROTEIN_LAYER = "counts_dense"


@dataclass(frozen=True)
class ModelSpec:
    """How to build one benchmarked model."""

    name: str
    family: str
    build: Callable[..., scvi.model.base.BaseModelClass]
    kwargs: dict = field(default_factory=dict)


def _modtt(mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs) -> MODTT:
    MODTT.setup_mudata(
        mdata,
        labels_key=labels_key,
        batch_key=batch_key,
        modalities={"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD},
    )
    return MODTT(mdata, **kwargs)


def _totalvi(
    mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs
) -> scvi.model.TOTALVI:
    protein = mdata[PROTEIN_MOD]
    protein.layers[DENSE_PROTEIN_LAYER] = (
        protein.X.toarray() if sp.issparse(protein.X) else np.asarray(protein.X)
    )
    scvi.model.TOTALVI.setup_mudata(
        mdata,
        protein_layer=DENSE_PROTEIN_LAYER,
        batch_key=batch_key,
        modalities={"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD},
    )
    return scvi.model.TOTALVI(mdata, **kwargs)


def concatenated_counts(mdata: MuData) -> ad.AnnData:
    """RNA and protein counts side by side in one AnnData (scVI's view of CITE-seq data)."""
    rna, protein = mdata[RNA_MOD], mdata[PROTEIN_MOD]
    var_names = [
        *(f"rna:{name}" for name in rna.var_names),
        *(f"prot:{name}" for name in protein.var_names),
    ]
    X = sp.hstack([sp.csr_matrix(rna.X), sp.csr_matrix(protein.X)]).tocsr()
    adata = ad.AnnData(X=X, obs=mdata.obs.copy())
    adata.var_names = var_names
    adata.var["modality"] = [RNA_MOD] * rna.n_vars + [PROTEIN_MOD] * protein.n_vars
    return adata


def _scvi(
    mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs
) -> scvi.model.SCVI:
    adata = concatenated_counts(mdata)
    scvi.model.SCVI.setup_anndata(adata, batch_key=batch_key, labels_key=labels_key)
    return scvi.model.SCVI(adata, **kwargs)


MODELS: dict[str, ModelSpec] = {
    "modtt-tt": ModelSpec(
        "modtt-tt", "modtt", _modtt, {"architecture": "modular", "coupling": "tt"}
    ),
    "modtt-dense": ModelSpec(
        "modtt-dense", "modtt", _modtt, {"architecture": "modular", "coupling": "dense"}
    ),
    "flat": ModelSpec("flat", "modtt", _modtt, {"architecture": "flat"}),
    "scvi": ModelSpec("scvi", "scvi", _scvi),
    "totalvi": ModelSpec("totalvi", "totalvi", _totalvi),
}


def build_model(
    name: str, mdata: MuData, labels_key: str | None = None, batch_key: str | None = None, **kwargs
):
    """Build the benchmark model ``name`` on ``mdata`` (registering it), untrained."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; the benchmark knows {sorted(MODELS)}.")
    spec = MODELS[name]
    return spec.build(mdata, labels_key, batch_key, **{**spec.kwargs, **kwargs})


def n_parameters(model) -> int:
    """Trainable parameters of a scvi-tools model."""
    return int(sum(p.numel() for p in model.module.parameters() if p.requires_grad))

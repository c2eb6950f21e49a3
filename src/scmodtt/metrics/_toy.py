"""A tiny CITE-seq simulator for the runnable examples in the metric docstrings."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from mudata import MuData

_N_TYPES = 3
_N_PAIRS = 6
_N_BACKGROUND_GENES = 4


def toy_pairs() -> list[tuple[str, str]]:
    """The matched ``(gene, protein)`` pairs of :func:`toy_cite_mudata`."""
    return [(f"gene{k}", f"prot{k}") for k in range(_N_PAIRS)]


def toy_cite_mudata(n_cells_per_type: int = 50, seed: int = 0) -> MuData:
    """Poisson RNA + ADT counts of 3 cell types whose paired genes and proteins co-vary.

    The distribution is fixed; ``seed`` only changes the draw, so two seeds give two independent
    samples of the same cells. Labels are in ``mdata.obs['cell_type']``.
    """
    params = np.random.default_rng(12345)
    type_means = params.normal(0.0, 1.0, size=(_N_TYPES, _N_PAIRS))
    loadings = params.uniform(0.0, 1.0, size=(_N_TYPES, _N_PAIRS))

    rng = np.random.default_rng(seed)
    cell_type = np.repeat(np.arange(_N_TYPES), n_cells_per_type)
    # A latent factor per cell and pair drives both the gene and its protein.
    shared = loadings[cell_type] * rng.normal(size=(len(cell_type), _N_PAIRS))
    genes = rng.poisson(np.exp(2.0 + type_means[cell_type] + shared))
    background = rng.poisson(20.0, size=(len(cell_type), _N_BACKGROUND_GENES))
    proteins = rng.poisson(np.exp(4.0 + type_means[cell_type] + shared))

    obs_names = [f"draw{seed}_cell{i}" for i in range(len(cell_type))]
    rna = ad.AnnData(
        np.hstack([genes, background]).astype(np.float32),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(
            index=[f"gene{k}" for k in range(_N_PAIRS)]
            + [f"background{k}" for k in range(_N_BACKGROUND_GENES)]
        ),
    )
    prot = ad.AnnData(
        proteins.astype(np.float32),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(index=[f"prot{k}" for k in range(_N_PAIRS)]),
    )
    mdata = MuData({"rna": rna, "prot": prot})
    mdata.obs["cell_type"] = pd.Categorical([f"type{c}" for c in cell_type])
    return mdata

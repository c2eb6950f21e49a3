"""Generation protocols: how each benchmarked model produces synthetic cells of given labels.

- ``native``: MODTT draws ``z`` from its learned per-label prior.
- ``latent_gaussian``: for every latent model (the only protocol scVI and totalVI have), fit a
  Gaussian per label to the latent means of the training cells, draw ``z``, decode, draw counts.
- ``linear``: PCA of the shared normalized space, a Gaussian per label in PC space, inverse
  transform (no training; after Souza & Mehta 2026).
- ``oracle``: a bootstrap of real training cells per label, the ceiling every model is judged
  against.

Library sizes of generated cells are drawn per label from the training cells (log-normal), the
same rule MODTT's own :meth:`~scmodtt.MODTT.sample` uses.
"""

from __future__ import annotations

from contextlib import contextmanager

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi.distributions import NegativeBinomial, NegativeBinomialMixture
from sklearn.decomposition import PCA

from .._constants import PROTEIN_NORMALIZED_LAYER, RNA_NORMALIZED_LAYER
from .._normalization import clr, log1p_normalize
from ..metrics import SharedSpace, shared_space
from ..model._synthetic import SYNTHETIC_KEY
from ._zoo import PROTEIN_MOD, RNA_MOD

PROTOCOLS = ("native", "latent_gaussian", "linear", "oracle")
# Ridge added to per-label covariances: labels with fewer cells than dimensions stay drawable.
_COVARIANCE_RIDGE = 1e-3


def requested_labels(label_counts: pd.Series) -> np.ndarray:
    """One entry per synthetic cell: each label repeated as often as ``label_counts`` says."""
    return np.repeat(label_counts.index.to_numpy(), label_counts.to_numpy())


def _per_label_gaussian_draws(
    values: np.ndarray, labels: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``len(wanted)`` rows from a full-covariance Gaussian fitted per label to ``values``."""
    draws = np.empty((len(wanted), values.shape[1]))
    for label in np.unique(wanted):  # a handful of cell types, not cells
        rows = values[labels == label]
        target = wanted == label
        mean = rows.mean(axis=0)
        covariance = (
            np.cov(rows, rowvar=False) if len(rows) > 1 else np.zeros((values.shape[1],) * 2)
        )
        covariance = np.atleast_2d(covariance) + _COVARIANCE_RIDGE * np.eye(values.shape[1])
        draws[target] = rng.multivariate_normal(
            mean, covariance, size=int(target.sum()), method="cholesky"
        )
    return draws


def _log_library_draws(
    counts, labels: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-label log-normal draws of library size, ``(n_wanted, 1)`` log values."""
    log_library = np.log(np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0))[:, None]
    return _per_label_gaussian_draws(log_library, labels, wanted, rng)


def synthetic_mudata(
    rna_counts: np.ndarray,
    protein_counts: np.ndarray,
    labels: np.ndarray,
    template: MuData,
    labels_key: str,
) -> MuData:
    """Wrap generated cells in a MuData with the template's modalities and var (metrics' input)."""
    obs = pd.DataFrame(
        {labels_key: pd.Categorical(labels), SYNTHETIC_KEY: True},
        index=pd.Index([f"synthetic_{i}" for i in range(len(labels))]),
    )
    rna_counts = sp.csr_matrix(np.asarray(rna_counts, dtype=np.float32))
    protein_counts = sp.csr_matrix(np.asarray(protein_counts, dtype=np.float32))
    rna = ad.AnnData(rna_counts, obs=obs.copy(), var=template[RNA_MOD].var.copy())
    protein = ad.AnnData(protein_counts, obs=obs.copy(), var=template[PROTEIN_MOD].var.copy())
    rna.layers[RNA_NORMALIZED_LAYER] = log1p_normalize(rna_counts)
    protein.layers[PROTEIN_NORMALIZED_LAYER] = clr(protein_counts)
    mdata = MuData({RNA_MOD: rna, PROTEIN_MOD: protein})
    mdata.obs = obs
    return mdata


@contextmanager
def _torch_seed(seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# ---------------------------------------------------------------------- protocols
def generate_oracle(train: MuData, labels_key: str, label_counts: pd.Series, seed: int) -> MuData:
    """Bootstrap real training cells per label: the ceiling every generator is judged against.

    Parameters
    ----------
    train
        Real training cells (raw counts in ``rna`` and ``prot``).
    labels_key
        Column of ``.obs`` with the labels.
    label_counts
        Synthetic cells wanted per label (e.g. the test set's label counts).
    seed
        Seed of every random draw: the same seed gives the same cells.

    Returns
    -------
    Resampled cells with ``obs[labels_key]`` and ``obs["synthetic"]``, counts in ``.X``.

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.tiny_cite()
    >>> counts = mdata.obs["cell_type"].value_counts()
    >>> cells = scmodtt.benchmark.generate_oracle(mdata, "cell_type", counts, seed=0)
    >>> cells.n_obs == mdata.n_obs
    True

    """
    rng = np.random.default_rng(seed)
    train_labels = train.obs[labels_key].astype(str).to_numpy()
    wanted = requested_labels(label_counts)
    picks = np.empty(len(wanted), dtype=np.int64)
    for label in np.unique(wanted):
        target = wanted == label
        picks[target] = rng.choice(
            np.flatnonzero(train_labels == label), size=int(target.sum()), replace=True
        )
    return synthetic_mudata(
        train[RNA_MOD].X[picks].toarray()
        if sp.issparse(train[RNA_MOD].X)
        else train[RNA_MOD].X[picks],
        train[PROTEIN_MOD].X[picks].toarray()
        if sp.issparse(train[PROTEIN_MOD].X)
        else train[PROTEIN_MOD].X[picks],
        wanted,
        train,
        labels_key,
    )


def generate_linear(
    train: MuData, labels_key: str, label_counts: pd.Series, seed: int, n_components: int = 50
) -> SharedSpace:
    """PCA of the shared space, a Gaussian per label in PC space, inverse transform.

    The training-free baseline every latent model should beat (after Souza & Mehta 2026).

    Parameters
    ----------
    train
        Real training cells (raw counts in ``rna`` and ``prot``).
    labels_key, label_counts, seed
        As in :func:`generate_oracle`.
    n_components
        Principal components (at most cells − 1 and features).

    Returns
    -------
    Normalized values (RNA log1p per 10⁴, ADT CLR), not counts, as a
    :class:`~scmodtt.metrics.SharedSpace`, which every metric accepts.

    """
    rng = np.random.default_rng(seed)
    real = shared_space(train)
    n_components = min(n_components, real.n_obs - 1, real.X.shape[1])
    pca = PCA(n_components=n_components, random_state=seed).fit(real.X)
    wanted = requested_labels(label_counts)
    scores = _per_label_gaussian_draws(pca.transform(real.X), real.labels(labels_key), wanted, rng)
    generated = pca.inverse_transform(scores)
    n_genes = len(real.gene_names)
    obs = pd.DataFrame(
        {labels_key: pd.Categorical(wanted), SYNTHETIC_KEY: True},
        index=pd.Index([f"synthetic_{i}" for i in range(len(wanted))]),
    )
    return SharedSpace(
        rna=generated[:, :n_genes],
        protein=generated[:, n_genes:],
        gene_names=real.gene_names,
        protein_names=real.protein_names,
        obs=obs,
    )


def generate_native(model, labels_key: str, label_counts: pd.Series, seed: int) -> MuData:
    """MODTT's own conditional generator: ``z`` from the learned per-label prior.

    Parameters
    ----------
    model
        A trained :class:`~scmodtt.MODTT` with labels.
    labels_key, label_counts, seed
        As in :func:`generate_oracle`.

    Returns
    -------
    The output of :meth:`~scmodtt.MODTT.sample` with RNA and protein counts in ``.X``.

    """
    synthetic = model.sample(labels=label_counts.to_dict(), seed=seed)
    return _as_benchmark_mudata(synthetic, labels_key)


def generate_latent_gaussian(
    model,
    family: str,
    train: MuData,
    train_indices: np.ndarray,
    labels_key: str,
    label_counts: pd.Series,
    seed: int,
) -> MuData:
    """Gaussian per label on the training cells' latent means; decode with the model's own decoder.

    The one protocol shared by every latent model, so MODTT, scVI and totalVI are compared on the
    same footing. Library sizes are drawn per label from the training cells (log-normal).

    Parameters
    ----------
    model
        A trained :class:`~scmodtt.MODTT`, :class:`scvi.model.SCVI` (set up on concatenated RNA
        + ADT counts) or :class:`scvi.model.TOTALVI`.
    family
        ``"modtt"``, ``"scvi"`` or ``"totalvi"``.
    train
        The real training cells.
    train_indices
        Positions of the training cells among the cells the model was set up with (the rest are
        its validation cells); ``train`` holds exactly those cells.
    labels_key, label_counts, seed
        As in :func:`generate_oracle`.

    Returns
    -------
    Generated cells with RNA and protein counts, ``obs[labels_key]`` and ``obs["synthetic"]``.

    """
    rng = np.random.default_rng(seed)
    latent = model.get_latent_representation(indices=train_indices)
    train_labels = train.obs[labels_key].astype(str).to_numpy()
    wanted = requested_labels(label_counts)
    z = _per_label_gaussian_draws(latent, train_labels, wanted, rng).astype(np.float32)
    if family == "modtt":
        synthetic = model.generate_from_latent(z, labels=wanted, seed=seed)
        return _as_benchmark_mudata(synthetic, labels_key)
    rna_log_library = _log_library_draws(train[RNA_MOD].X, train_labels, wanted, rng)
    registered_batches = np.asarray(model.adata_manager.get_from_registry("batch")).ravel()[
        train_indices
    ]
    batch_index = torch.as_tensor(_batch_draws(registered_batches, train_labels, wanted, rng))[
        :, None
    ]
    z_t = torch.as_tensor(z)
    with torch.inference_mode(), _torch_seed(seed):
        model.module.eval()
        if family == "scvi":
            outputs = model.module.generative(
                z_t, torch.as_tensor(rna_log_library, dtype=torch.float32), batch_index
            )
            counts = outputs["px"].sample().numpy()
            n_genes = train[RNA_MOD].n_vars
            rna_counts, protein_counts = counts[:, :n_genes], counts[:, n_genes:]
        elif family == "totalvi":
            library = torch.as_tensor(np.exp(rna_log_library), dtype=torch.float32)
            labels = torch.zeros(len(wanted), 1, dtype=torch.long)
            outputs = model.module.generative(z_t, library, batch_index, labels)
            px, py = outputs["px_"], outputs["py_norm_"]
            rna_counts = NegativeBinomial(mu=px["rate"], theta=px["r"]).sample().numpy()
            # 1.4.2's own sampler ignores the learned per-batch capture efficiency and draws
            # protein counts several-fold too large; `py_norm_` applies it.
            protein_counts = (
                NegativeBinomialMixture(
                    mu1=py["rate_back"],
                    mu2=py["rate_fore"],
                    theta1=py["r"],
                    mixture_logits=py["mixing"],
                )
                .sample()
                .numpy()
            )
        else:
            raise ValueError(f"No latent decoder for model family {family!r}.")
    return synthetic_mudata(rna_counts, protein_counts, wanted, train, labels_key)


def _batch_draws(
    batch_codes: np.ndarray, labels: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each new cell takes the batch of a random training cell of its label."""
    draws = np.empty(len(wanted), dtype=np.int64)
    for label in np.unique(wanted):
        target = wanted == label
        draws[target] = rng.choice(batch_codes[labels == label], size=int(target.sum()))
    return draws


def _as_benchmark_mudata(synthetic: MuData, labels_key: str) -> MuData:
    """MODTT's output already mirrors the data; make the labels plain strings for the metrics."""
    synthetic.obs[labels_key] = synthetic.obs[labels_key].astype(str).astype("category")
    return synthetic

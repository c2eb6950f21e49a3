"""Generation protocols: how each benchmarked model produces synthetic cells of given labels.

- ``native``: MODTT's own sampler, :meth:`~scmodtt.MODTT.sample` (its conditional flow prior over
  ``z`` and library sizes, fitted after training).
- ``latent_gaussian``: for every latent model, a Gaussian per label fitted to the latent means of
  the training cells; ``z`` drawn, decoded, counts drawn. Library sizes are drawn per label from
  the training cells (log-normal), the rule of MODTT's ``prior="gaussian"``.
- ``latent_flow``: for every latent model, a fresh :class:`~scmodtt.module.ConditionalFlowPrior`
  (the flow MODTT samples natively, with its settings) fitted to the training cells' latent
  posteriors together with the log library sizes the model's decoder reads, conditioned on label
  and batch; ``(z, libraries)`` drawn, decoded with the model's own decoder, counts drawn.
- ``linear``: PCA of the shared normalized space, a Gaussian per label in PC space, inverse
  transform (no training; after Souza & Mehta 2026).
- ``oracle``: a bootstrap of real training cells per label, the ceiling every model is judged
  against.

:data:`PROTOCOLS` is the registry: each protocol's generator, its one-line description (the
report's) and its colour in the report's figures. Which models are scored under which protocols
is said by :data:`scmodtt.benchmark.MODELS`. The metrics are defined on the metrics page of the
user guide (``docs/user_guide/metrics.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.distributions import NegativeBinomial, NegativeBinomialMixture
from sklearn.decomposition import PCA

from .._constants import PROTEIN_NORMALIZED_LAYER, RNA_NORMALIZED_LAYER
from .._normalization import clr, log1p_normalize
from ..metrics import SharedSpace, shared_space
from ..model._flow import FLOW_BATCH_SIZE, default_flow_epochs
from ..model._synthetic import SYNTHETIC_KEY
from ..module._priors import (
    ConditionalFlowPrior,
    library_statistics,
    per_label_gaussian_draws,
)
from ._zoo import PROTEIN_MOD, RNA_MOD


def requested_labels(label_counts: pd.Series) -> np.ndarray:
    """One entry per synthetic cell: each label repeated as often as ``label_counts`` says."""
    return np.repeat(label_counts.index.to_numpy(), label_counts.to_numpy())


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


@dataclass(frozen=True)
class GenerationRequest:
    """What a protocol is given to generate one set of synthetic cells.

    Attributes
    ----------
    train, labels_key, label_counts, seed
        As in :func:`generate_oracle`.
    model, family, train_indices
        As in :func:`generate_latent_gaussian` (``None`` for the training-free protocols).
    flow_max_epochs
        Epochs of the ``latent_flow`` protocol's flow (``None``: MODTT's default schedule).

    """

    train: MuData
    labels_key: str
    label_counts: pd.Series
    seed: int
    model: object | None = None
    family: str | None = None
    train_indices: np.ndarray | None = None
    flow_max_epochs: int | None = None

    @property
    def wanted(self) -> np.ndarray:
        """Label of each synthetic cell."""
        return requested_labels(self.label_counts)

    @property
    def train_labels(self) -> np.ndarray:
        """Label of each training cell, as strings."""
        return self.train.obs[self.labels_key].astype(str).to_numpy()

    def train_batches(self) -> np.ndarray:
        """The model's registered batch code of each training cell."""
        registered = self.model.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)
        return np.asarray(registered).ravel().astype(np.int64)[self.train_indices]


# ---------------------------------------------------------------------- training-free protocols
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
    scores = per_label_gaussian_draws(pca.transform(real.X), real.labels(labels_key), wanted, rng)
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


# ---------------------------------------------------------------------- model protocols
def generate_native(model, labels_key: str, label_counts: pd.Series, seed: int) -> MuData:
    """MODTT's own conditional generator, :meth:`~scmodtt.MODTT.sample` with its defaults.

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

    A protocol shared by every latent model, so MODTT, scVI and totalVI are compared on the same
    footing. Library sizes are drawn per label from the training cells (log-normal): for scVI,
    set up on RNA and ADT counts side by side, the library of those concatenated counts.

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
    request = GenerationRequest(train, labels_key, label_counts, seed, model, family, train_indices)
    rng = np.random.default_rng(seed)
    latent, _ = _latent_posteriors(request)
    z = per_label_gaussian_draws(latent, request.train_labels, request.wanted, rng)
    return decode_latent(request, z, rng)


def generate_latent_flow(
    model,
    family: str,
    train: MuData,
    train_indices: np.ndarray,
    labels_key: str,
    label_counts: pd.Series,
    seed: int,
    max_epochs: int | None = None,
) -> MuData:
    """A conditional flow on the training cells' latents and libraries; decode with the model.

    A fresh :class:`~scmodtt.module.ConditionalFlowPrior` with the settings MODTT's own flow prior
    has (:meth:`~scmodtt.MODTT.fit_flow_prior`) is fitted to each training cell's posterior mean,
    with its posterior standard deviation as noise, together with the log library sizes the
    model's decoder reads (MODTT: log RNA and ADT libraries and the ADT CLR centre; scVI: the log
    library of RNA and ADT counts together; totalVI: the log RNA library), conditioned on label and
    batch. Each new cell takes the batch of a random training cell of its label; ``(z,
    libraries)`` is drawn from the flow and decoded. A label with too few training cells for the
    flow is drawn from a Gaussian per label on the same values instead.

    Parameters
    ----------
    model, family, train, train_indices, labels_key, label_counts, seed
        As in :func:`generate_latent_gaussian`.
    max_epochs
        Epochs of the flow's fit; ``None``: MODTT's default schedule (about 4,000 optimiser
        steps, 20 to 1,000 epochs).

    Returns
    -------
    As :func:`generate_latent_gaussian`.

    """
    request = GenerationRequest(train, labels_key, label_counts, seed, model, family, train_indices)
    rng = np.random.default_rng(seed)
    latent, latent_std = _latent_posteriors(request)
    libraries = _training_libraries(request)
    values = np.hstack([latent, libraries])
    scales = np.hstack([latent_std, np.zeros_like(libraries)])
    train_labels, wanted = request.train_labels, request.wanted
    names, label_codes = np.unique(train_labels, return_inverse=True)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(f"No training cells of the requested label(s) {unknown}.")
    wanted_codes = np.searchsorted(names, wanted)
    train_batches = request.train_batches()
    batches = _batch_draws(train_batches, train_labels, wanted, rng)
    as_tensor = torch.as_tensor
    with _torch_seed(seed):  # the flow's initial weights and its noise
        flow = ConditionalFlowPrior(values.shape[1], len(names), model.summary_stats.n_batch)
        flow.fit(
            as_tensor(values, dtype=torch.float32),
            as_tensor(label_codes),
            as_tensor(train_batches),
            scales=as_tensor(scales, dtype=torch.float32),
            max_epochs=max_epochs or default_flow_epochs(len(values)),
            batch_size=FLOW_BATCH_SIZE,
            seed=seed,
        )
        draws = flow.sample(as_tensor(wanted_codes), as_tensor(batches)).numpy().astype(np.float64)
    rare = ~flow.fitted_labels.numpy()[wanted_codes]
    if rare.any():
        draws[rare] = per_label_gaussian_draws(values, train_labels, wanted[rare], rng)
    n_latent = latent.shape[1]
    return decode_latent(request, draws[:, :n_latent], rng, draws[:, n_latent:], batches)


def _latent_posteriors(request: GenerationRequest) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and standard deviations of the training cells' latent codes."""
    if getattr(request.model.module, "latent_distribution", "normal") != "normal":
        raise ValueError(
            "The latent protocols decode draws in the space of the posterior means, which needs "
            "a model with latent_distribution='normal'."
        )
    mean, variance = request.model.get_latent_representation(
        indices=request.train_indices, return_dist=True
    )
    return mean, np.sqrt(variance)


def _log_library(*counts) -> np.ndarray:
    """``(n_cells, 1)`` log of each cell's total count over all the given count matrices."""
    total = sum(np.asarray(matrix.sum(axis=1)).ravel() for matrix in counts)
    return np.log(np.maximum(total, 1.0))[:, None]


def _training_libraries(request: GenerationRequest) -> np.ndarray:
    """The training cells' log library statistics that the model family's decoder reads."""
    rna, protein = request.train[RNA_MOD].X, request.train[PROTEIN_MOD].X
    if request.family == "modtt":
        return library_statistics(rna, protein)
    if request.family == "scvi":  # set up on RNA and ADT counts side by side
        return _log_library(rna, protein)
    if request.family == "totalvi":
        return _log_library(rna)
    raise ValueError(f"No latent decoder for model family {request.family!r}.")


def decode_latent(
    request: GenerationRequest,
    z: np.ndarray,
    rng: np.random.Generator,
    libraries: np.ndarray | None = None,
    batches: np.ndarray | None = None,
) -> MuData:
    """Decode latent codes with the model's own decoder and draw counts.

    Parameters
    ----------
    request
        The model, its family, the training cells and the labels of the new cells.
    z
        ``(n_cells, n_latent)`` latent codes, one per requested cell.
    rng
        Source of the library and batch draws.
    libraries
        Log library statistics of each new cell in the columns of :func:`_training_libraries`;
        ``None`` draws them per label from the training cells (log-normal).
    batches
        Registered batch code of each new cell; ``None`` gives each the batch of a random
        training cell of its label.

    Returns
    -------
    Generated cells with RNA and protein counts, ``obs[labels_key]`` and ``obs["synthetic"]``.

    """
    model, family, wanted = request.model, request.family, request.wanted
    z = np.asarray(z, dtype=np.float32)
    if family == "modtt":
        batch = None
        if batches is not None:
            mapping = model.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY)
            batch = [str(name) for name in np.asarray(mapping.categorical_mapping)[batches]]
        synthetic = model.generate_from_latent(
            z, labels=wanted, batch=batch, seed=request.seed, library_stats=libraries
        )
        return _as_benchmark_mudata(synthetic, request.labels_key)
    train_labels = request.train_labels
    if libraries is None:
        libraries = per_label_gaussian_draws(
            _training_libraries(request), train_labels, wanted, rng
        )
    if batches is None:
        batches = _batch_draws(request.train_batches(), train_labels, wanted, rng)
    batch_index = torch.as_tensor(batches)[:, None]
    log_library = torch.as_tensor(libraries[:, :1], dtype=torch.float32)
    z_t = torch.as_tensor(z)
    with torch.inference_mode(), _torch_seed(request.seed):
        model.module.eval()
        if family == "scvi":
            outputs = model.module.generative(z_t, log_library, batch_index)
            counts = outputs["px"].sample().numpy()
            n_genes = request.train[RNA_MOD].n_vars
            rna_counts, protein_counts = counts[:, :n_genes], counts[:, n_genes:]
        elif family == "totalvi":
            labels = torch.zeros(len(wanted), 1, dtype=torch.long)
            outputs = model.module.generative(z_t, log_library.exp(), batch_index, labels)
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
    return synthetic_mudata(rna_counts, protein_counts, wanted, request.train, request.labels_key)


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


# ---------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Protocol:
    """One generation protocol.

    Attributes
    ----------
    name
        Name in ``results.csv``.
    description
        One line for the report (no final full stop).
    colour
        Colour of its bars and UMAP points in the report.
    generate
        ``generate(request)`` → synthetic cells (counts as MuData, or a
        :class:`~scmodtt.metrics.SharedSpace`) for a :class:`GenerationRequest`.
    counterpart
        The baseline's protocol a run of this protocol is compared with when the baseline does
        not have this one (MODTT's native flow prior against a baseline's ``latent_flow``).

    """

    name: str
    description: str
    colour: str
    generate: Callable[[GenerationRequest], MuData | SharedSpace]
    counterpart: str | None = None


def _latent_arguments(request: GenerationRequest) -> tuple:
    """The arguments of :func:`generate_latent_gaussian` and :func:`generate_latent_flow`."""
    return (
        request.model,
        request.family,
        request.train,
        request.train_indices,
        request.labels_key,
        request.label_counts,
        request.seed,
    )


def _data_arguments(request: GenerationRequest) -> tuple:
    """The arguments of :func:`generate_oracle` and :func:`generate_linear`."""
    return request.train, request.labels_key, request.label_counts, request.seed


#: Every generation protocol by name, in report order.
PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "native",
            "MODTT's own sampler: (z, library sizes) from its conditional flow prior, fitted "
            "to the training cells after training, decoded",
            "#1f77b4",
            lambda r: generate_native(r.model, r.labels_key, r.label_counts, r.seed),
            counterpart="latent_flow",
        ),
        Protocol(
            "latent_gaussian",
            "a Gaussian per label fitted to the latent means of training cells, sampled and "
            "decoded with library sizes drawn per label",
            "#ff7f0e",
            lambda r: generate_latent_gaussian(*_latent_arguments(r)),
        ),
        Protocol(
            "latent_flow",
            "a conditional flow (MODTT's flow prior, refitted) on the training cells' latent "
            "posteriors and log library sizes given label and batch, sampled and decoded with "
            "the model's own decoder",
            "#d62728",
            lambda r: generate_latent_flow(*_latent_arguments(r), max_epochs=r.flow_max_epochs),
        ),
        Protocol(
            "linear",
            "PCA of the shared space, a Gaussian per label in PC space, inverse-transformed "
            "(no training)",
            "#2ca02c",
            lambda r: generate_linear(*_data_arguments(r)),
        ),
        Protocol(
            "oracle",
            "a bootstrap of real training cells per label (the reference every model is judged "
            "against)",
            "#9467bd",  # not grey: the UMAPs draw real cells in grey
            lambda r: generate_oracle(*_data_arguments(r)),
        ),
    )
}

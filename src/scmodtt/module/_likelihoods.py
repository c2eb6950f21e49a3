"""Observation models of MODTT: how decoder outputs become a distribution over one modality.

Each likelihood declares how many decoder outputs it needs per feature and turns them (plus the
cell's library size and learned per-feature parameters) into a :class:`torch.distributions`
object whose ``log_prob`` scores the observed data and whose ``mean`` is the denoised expression.

The count likelihoods are scvi-tools' distributions with a ``log_prob`` whose cost follows the
data's non-zeros: a zero count has a closed form (``log NB(0 | μ, θ) = θ·log(θ/(θ+μ))``), so the
``lgamma`` terms (and their ``digamma`` gradients) run on the non-zero entries only, and the
data-only ``lgamma(x + 1)`` outside autograd. The value is scvi-tools' dense log-probability,
term for term (same ``eps``), so reported ELBOs and reconstruction errors do not change.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scvi import settings
from scvi.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedNegativeBinomial,
)
from torch import nn
from torch.distributions import Normal

GENE_LIKELIHOODS = ("nb", "zinb", "normal")
PROTEIN_LIKELIHOODS = ("nb", "nbmixture", "normal")
COUNT_LIKELIHOODS = ("nb", "zinb", "nbmixture")
#: How the per-feature dispersion (NB family) or scale (normal) is shared across cells.
DISPERSIONS = ("gene", "gene-label")

#: Decoder outputs needed per feature.
N_OUTPUTS = {"nb": 1, "zinb": 2, "nbmixture": 3, "normal": 1}


class FeatureLikelihood(nn.Module):
    """Per-feature observation model for one modality.

    Parameters
    ----------
    likelihood
        ``"nb"``: negative binomial with mean ``library · softmax(logits)`` and a learned
        per-feature inverse dispersion. ``"zinb"``: the same with a zero-inflation logit per cell
        and feature. ``"nbmixture"``: totalVI's protein model, a two-component NB mixture of a
        background (``exp`` of a decoded log-rate) and a foreground ``(1 + softplus) ×`` larger,
        mixed by a decoded logit. ``"normal"``: Gaussian on the normalized values (log1p for
        RNA, CLR for ADT) with a learned per-feature scale; with a fixed scale it is the paper's
        MSE objective.
    n_features
        Number of features of the modality.
    dispersion
        ``"gene"``: one inverse dispersion (or scale) per feature, as scVI's default;
        ``"gene-label"``: one per feature and label (``n_labels`` rows), so that a cell type's
        count noise can differ from another's.
    n_labels
        Number of labels (``"gene-label"`` only).

    """

    def __init__(
        self, likelihood: str, n_features: int, dispersion: str = "gene", n_labels: int = 1
    ):
        super().__init__()
        if likelihood not in N_OUTPUTS:
            raise ValueError(f"Unknown likelihood {likelihood!r}.")
        if dispersion not in DISPERSIONS:
            raise ValueError(f"`dispersion` must be one of {DISPERSIONS}, got {dispersion!r}.")
        self.likelihood = likelihood
        self.n_outputs = N_OUTPUTS[likelihood]
        self.per_label = dispersion == "gene-label"
        shape = (n_labels, n_features) if self.per_label else (n_features,)
        # Inverse dispersion (NB family) or log standard deviation (normal) per feature.
        self.feature_parameter = nn.Parameter(
            torch.zeros(shape) if likelihood == "normal" else torch.randn(shape)
        )

    @property
    def is_count(self) -> bool:
        return self.likelihood in COUNT_LIKELIHOODS

    def distribution(
        self,
        outputs: torch.Tensor,
        log_library: torch.Tensor,
        label_index: torch.Tensor | None = None,
    ) -> torch.distributions.Distribution:
        """Build the distribution from decoder outputs and the log library size.

        ``outputs`` has shape ``(n, n_outputs, F)``, ``log_library`` ``(n, 1)`` and
        ``label_index`` (needed for ``"gene-label"`` dispersion) ``(n,)`` or ``(n, 1)``.
        """
        parameter = self.feature_parameter
        if self.per_label:
            parameter = parameter[label_index.reshape(-1).long()]
        if self.likelihood == "normal":
            return Normal(outputs[:, 0], parameter.exp().expand_as(outputs[:, 0]))
        theta = parameter.exp()
        if self.likelihood == "nbmixture":
            background = torch.exp(outputs[:, 0].clamp(max=12.0))
            foreground = background * (1.0 + F.softplus(outputs[:, 1]))
            return SparseNegativeBinomialMixture(
                mu1=background, mu2=foreground, theta1=theta, mixture_logits=outputs[:, 2]
            )
        mean = torch.softmax(outputs[:, 0], dim=-1) * torch.exp(log_library)
        if self.likelihood == "zinb":
            return SparseZeroInflatedNegativeBinomial(mu=mean, theta=theta, zi_logits=outputs[:, 1])
        return SparseNegativeBinomial(mu=mean, theta=theta)

    @staticmethod
    def expected_value(distribution: torch.distributions.Distribution) -> torch.Tensor:
        """Denoised expression: the NB mean without technical zeros or protein background."""
        if isinstance(distribution, ZeroInflatedNegativeBinomial):
            return distribution.mu
        if isinstance(distribution, NegativeBinomialMixture):
            # As totalVI: the denoised protein signal is the foreground component, weighted by
            # the probability that the count comes from it.
            foreground_probability = 1.0 - torch.sigmoid(distribution.mixture_logits)
            return distribution.mu2 * foreground_probability
        return distribution.mean


# ---------------------------------------------------------------------- per-non-zero log-probs
_EPS = 1e-8  # scvi-tools' numerical constant in every NB log-probability
#: Fraction of non-zero entries above which the non-zero terms are evaluated on every entry.
DENSE_ABOVE = 0.5


class _NonZeros:
    """The entries of a ``(n, F)`` count matrix selected by ``mask`` (its non-zero counts).

    Below :data:`DENSE_ABOVE` density the entries are gathered (flat, row-major order) and the
    results scattered back: ``gather`` / ``scatter_add`` on unique indices, vectorised and
    deterministic on CPU (unlike ``index_add``). Above it gathering costs more than it saves, and
    the same formulas run on every entry with the unselected ones set to ``x = 0`` and masked out.
    ``lgamma_x1`` is the data-only ``lgamma(x + 1)``, computed once for the mini-batch and outside
    autograd.
    """

    def __init__(self, value: torch.Tensor, mask: torch.Tensor):
        self.shape = value.shape
        self.mask = mask
        self.index = torch.nonzero(mask.reshape(-1)).squeeze(1)
        if self.index.numel() > DENSE_ABOVE * mask.numel():
            self.index = None
            self.x = torch.where(mask, value, torch.zeros((), dtype=value.dtype))
        else:
            self.x = value.reshape(-1).gather(0, self.index)
        with torch.no_grad():
            self.lgamma_x1 = torch.lgamma(self.x + 1)

    def take(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` at the selected entries; a 1-d tensor is per feature (column)."""
        if self.index is None:
            return tensor
        if tensor.ndim == 1:
            return tensor.gather(0, self.index % self.shape[-1])
        return tensor.expand(self.shape).reshape(-1).gather(0, self.index)

    def add_to(self, dense: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``dense`` with ``values`` added at the selected entries (out of place)."""
        if self.index is None:
            return dense + torch.where(self.mask, values, torch.zeros((), dtype=values.dtype))
        dense = dense.expand(self.shape).contiguous()
        return dense.reshape(-1).scatter_add(0, self.index, values).view(self.shape)

    def log_gamma_ratio(self, theta: torch.Tensor) -> torch.Tensor:
        """``lgamma(x+θ) − lgamma(θ) − lgamma(x+1)`` at the selected entries (zero at ``x = 0``).

        A per-feature ``θ`` has its ``lgamma`` taken per feature, then gathered.
        """
        lgamma_theta = (
            self.take(torch.lgamma(theta)) if theta.ndim == 1 else torch.lgamma(self.take(theta))
        )
        return torch.lgamma(self.x + self.take(theta)) - lgamma_theta - self.lgamma_x1

    def nb_terms(self, mu, theta, log_theta_mu):
        """The part of the NB log-probability that vanishes at ``x = 0``, at the selected entries.

        That is ``x·log(μ/(θ+μ)) + lgamma(x+θ) − lgamma(θ) − lgamma(x+1)``.
        """
        return self.x * (
            torch.log(self.take(mu) + _EPS) - self.take(log_theta_mu)
        ) + self.log_gamma_ratio(theta)


def _warn_outside_support(distribution: torch.distributions.Distribution, value) -> None:
    """scvi-tools' value check, as a warning rather than an error outside the support."""
    try:
        distribution._validate_sample(value)
    except ValueError:
        warnings.warn(
            "The value argument must be within the support of the distribution",
            UserWarning,
            stacklevel=settings.warnings_stacklevel,
        )


def _fast_path(distribution, value: torch.Tensor, mu: torch.Tensor, theta) -> bool:
    """Whether the per-non-zero evaluation applies (else the parent's dense one runs).

    It needs the ``(mu, theta)`` parametrisation, a value of the parameters' shape (no sample
    dimensions) and a device with a working ``lgamma`` on gathered tensors (not MPS).
    """
    return (
        theta is not None
        and not distribution.on_mps
        and value.shape == mu.shape
        and value.ndim == 2
        and theta.ndim in (1, 2)
    )


class SparseNegativeBinomial(NegativeBinomial):
    """scvi-tools' :class:`~scvi.distributions.NegativeBinomial` with a ``log_prob`` costing one
    ``log`` per entry plus the ``lgamma`` terms on non-zero counts only (see the module notes).
    """

    def __init__(self, mu: torch.Tensor, theta: torch.Tensor, **kwargs):
        # The parent broadcasts theta to (n, F); keep the per-feature one for per-feature terms.
        self.theta_source = theta
        super().__init__(mu=mu, theta=theta, **kwargs)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if not _fast_path(self, value, self.mu, self.theta_source):
            return super().log_prob(value)
        if self._validate_args:
            _warn_outside_support(self, value)
        theta = self.theta_source
        log_theta_mu = torch.log(theta + self.mu + _EPS)
        # At x = 0 the NB log-probability is θ·(log θ − log(θ+μ)); lgamma(x+θ) − lgamma(θ) and
        # lgamma(x+1) are exactly zero there. Every other value (including invalid, non-integer
        # or negative ones) takes the full formula, as in scvi-tools.
        at_zero = theta * (torch.log(theta + _EPS) - log_theta_mu)
        nonzero = _NonZeros(value, value != 0)
        return nonzero.add_to(at_zero, nonzero.nb_terms(self.mu, theta, log_theta_mu))


class SparseZeroInflatedNegativeBinomial(ZeroInflatedNegativeBinomial):
    """scvi-tools' :class:`~scvi.distributions.ZeroInflatedNegativeBinomial` whose ``log_prob``
    runs the NB ``lgamma`` terms on non-zero counts only (same zero/non-zero split at
    ``eps = 1e-8`` as scvi-tools).
    """

    def __init__(self, mu: torch.Tensor, theta: torch.Tensor, zi_logits: torch.Tensor, **kwargs):
        self.theta_source = theta
        super().__init__(mu=mu, theta=theta, zi_logits=zi_logits, **kwargs)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if not _fast_path(self, value, self.mu, self.theta_source):
            return super().log_prob(value)
        _warn_outside_support(self, value)
        theta, pi = self.theta_source, self.zi_logits
        softplus_pi = F.softplus(-pi)
        log_theta_mu = torch.log(theta + self.mu + _EPS)
        pi_theta_log = -pi + theta * (torch.log(theta + _EPS) - log_theta_mu)
        # log(π + (1−π)·NB(0)) where x < eps, scvi-tools' mask product.
        at_zero = (value < _EPS).to(value.dtype) * (F.softplus(pi_theta_log) - softplus_pi)
        nonzero = _NonZeros(value, value > _EPS)
        terms = nonzero.take(pi_theta_log - softplus_pi) + nonzero.nb_terms(
            self.mu, theta, log_theta_mu
        )
        return nonzero.add_to(at_zero, terms)


class SparseNegativeBinomialMixture(NegativeBinomialMixture):
    """scvi-tools' :class:`~scvi.distributions.NegativeBinomialMixture` (one shared ``theta``)
    whose ``log_prob`` runs the ``lgamma`` terms on non-zero counts only.

    Both components share ``lgamma(x+θ) − lgamma(θ) − lgamma(x+1)``, which therefore comes out of
    the log-sum-exp and is added at the non-zero entries.
    """

    def __init__(self, mu1, mu2, theta1, mixture_logits, theta2=None, **kwargs):
        self.theta_source = theta1
        super().__init__(mu1, mu2, theta1, mixture_logits, theta2=theta2, **kwargs)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        theta = self.theta_source if self.theta2 is None else None
        if not _fast_path(self, value, self.mu1, theta):
            return super().log_prob(value)
        _warn_outside_support(self, value)
        pi = self.mixture_logits
        log_theta = torch.log(theta + _EPS)
        nonzero = _NonZeros(value, value != 0)
        components = []
        for mu in (self.mu1, self.mu2):
            log_theta_mu = torch.log(theta + mu + _EPS)
            x_term = nonzero.x * (torch.log(nonzero.take(mu) + _EPS) - nonzero.take(log_theta_mu))
            components.append(nonzero.add_to(theta * (log_theta - log_theta_mu), x_term))
        mixed = torch.logsumexp(torch.stack((components[0], components[1] - pi)), dim=0)
        return nonzero.add_to(mixed - F.softplus(-pi), nonzero.log_gamma_ratio(theta))


def initial_output_bias(likelihood: str, counts, normalize: Callable) -> np.ndarray:
    """Per-feature bias of the first decoder output that reproduces the data's mean expression.

    Starting the decoder at the average cell means training spends its steps on cell-to-cell
    variation instead of slowly moving thousands of per-feature biases from zero (at Adam's
    1e-3 per step, a gene's log-frequency would need thousands of steps to get there).

    Parameters
    ----------
    likelihood
        The modality's likelihood.
    counts
        Cells × features raw counts, dense or scipy-sparse.
    normalize
        Maps ``counts`` to the normalized space the ``"normal"`` likelihood models (only called
        for that likelihood, since it densifies).

    """
    terms = output_bias_terms(likelihood, counts, normalize)
    return output_bias_from_mean(likelihood, np.asarray(terms.mean(axis=0)).ravel())


def output_bias_terms(likelihood: str, counts, normalize: Callable):
    """Per-cell values whose mean over cells :func:`output_bias_from_mean` turns into the bias.

    Split from :func:`initial_output_bias` so that data on disk can be averaged block by block.
    """
    if likelihood == "normal":
        return normalize(counts)
    counts = sp.csr_matrix(counts, dtype=np.float64)
    if likelihood == "nbmixture":
        return counts
    library = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0)
    return sp.diags(1.0 / library) @ counts  # frequencies


def output_bias_from_mean(likelihood: str, mean: np.ndarray) -> np.ndarray:
    """The bias of :func:`initial_output_bias` from the cells' mean of :func:`output_bias_terms`."""
    if likelihood == "normal":
        return mean
    if likelihood == "nbmixture":
        # Background rate such that the initial mixture (π = 0.5, foreground 1 + softplus(0)
        # ≈ 1.69 × background) has the observed mean: mean = background × 1.35.
        return np.log(mean / 1.35 + 1e-3)
    return np.log(mean + 1e-8)

"""Observation models of MODTT: how decoder outputs become a distribution over one modality.

Each likelihood declares how many decoder outputs it needs per feature and turns them (plus the
cell's library size and learned per-feature parameters) into a :class:`torch.distributions`
object whose ``log_prob`` scores the observed data and whose ``mean`` is the denoised expression.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
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
            return NegativeBinomialMixture(
                mu1=background, mu2=foreground, theta1=theta, mixture_logits=outputs[:, 2]
            )
        mean = torch.softmax(outputs[:, 0], dim=-1) * torch.exp(log_library)
        if self.likelihood == "zinb":
            return ZeroInflatedNegativeBinomial(mu=mean, theta=theta, zi_logits=outputs[:, 1])
        return NegativeBinomial(mu=mean, theta=theta)

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
    if likelihood == "normal":
        return normalize(counts).mean(axis=0)
    counts = sp.csr_matrix(counts, dtype=np.float64)
    if likelihood == "nbmixture":
        # Background rate such that the initial mixture (π = 0.5, foreground 1 + softplus(0)
        # ≈ 1.69 × background) has the observed mean: mean = background × 1.35.
        return np.log(np.asarray(counts.mean(axis=0)).ravel() / 1.35 + 1e-3)
    library = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0)
    frequencies = sp.diags(1.0 / library) @ counts
    return np.log(np.asarray(frequencies.mean(axis=0)).ravel() + 1e-8)

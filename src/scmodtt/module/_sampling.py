"""Drawing negative-binomial counts at a cost that follows the non-zero draws.

``torch.distributions`` draws an NB count as ``Poisson(Gamma(θ, θ/μ))``: one gamma and one
Poisson variate per entry, zeros included, about 5 million entries per second on one CPU core.
Synthetic single-cell RNA is mostly zeros, so here every entry costs one uniform draw and one
closed-form zero probability, and only the entries that turn out non-zero walk the inverse CDF
(the NB probabilities follow a two-term recurrence). Entries with a large mean, whose counts would
need many recurrence steps, take the gamma-Poisson route. Both routes are exact draws from the
same distribution; no library offers a sparse NB sampler.
"""

from __future__ import annotations

import torch

#: Means above this are drawn by gamma-Poisson (their inverse-CDF walk would be long).
INVERSE_CDF_MAX_MEAN = 8.0


def sample_negative_binomial(
    mu: torch.Tensor, theta: torch.Tensor, zero_inflation_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """Draw counts from ``NB(mean=mu, inverse dispersion=theta)`` (optionally zero-inflated).

    Parameters
    ----------
    mu
        Means, any shape.
    theta
        Inverse dispersions, broadcastable to ``mu``.
    zero_inflation_logits
        Logits of the zero-inflation probability (ZINB), broadcastable to ``mu``.

    Returns
    -------
    Counts as floats, the shape of ``mu``; random numbers come from the global torch generator.

    """
    theta = theta.expand_as(mu)
    uniform = torch.rand_like(mu)
    log_p0 = theta * (torch.log(theta) - torch.log(theta + mu))
    counts = torch.zeros_like(mu)
    large = mu > INVERSE_CDF_MAX_MEAN
    if large.any():
        rate = torch.distributions.Gamma(theta[large], theta[large] / mu[large]).sample()
        counts[large] = torch.poisson(rate)
    nonzero = (uniform > torch.exp(log_p0)) & ~large
    index = nonzero.nonzero(as_tuple=True)
    if len(index[0]):
        counts[index] = _inverse_cdf_positive(
            mu[index].double(), theta[index].double(), uniform[index].double(), log_p0[index]
        ).to(mu.dtype)
    if zero_inflation_logits is not None:
        inflated = torch.rand_like(mu) < torch.sigmoid(zero_inflation_logits.expand_as(mu))
        counts = counts.masked_fill(inflated, 0.0)
    return counts


def _inverse_cdf_positive(mu, theta, uniform, log_p0) -> torch.Tensor:
    """Smallest ``k ≥ 1`` with ``CDF(k) ≥ uniform`` for entries known to have ``uniform > P(0)``.

    ``P(k) = P(k−1) · (k − 1 + θ)/k · μ/(θ + μ)``; each step keeps only the unresolved entries,
    so the work is the sum of the drawn counts, not entries × largest count.
    """
    success = mu / (theta + mu)
    probability = torch.exp(log_p0.double())
    cdf = probability.clone()
    result = torch.zeros_like(mu)
    active = torch.arange(len(mu), device=mu.device)
    k = 0
    while len(active):
        k += 1
        probability = probability * (k - 1 + theta) / k * success
        cdf = cdf + probability
        done = cdf >= uniform
        # Float round-off can leave the CDF a hair below 1: stop such entries where the mass ends.
        done |= probability < 1e-12 * cdf
        result[active[done]] = k
        keep = ~done
        active, probability, cdf = active[keep], probability[keep], cdf[keep]
        theta, success, uniform = theta[keep], success[keep], uniform[keep]
    return result

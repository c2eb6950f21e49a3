"""The sparse negative-binomial sampler draws from the same distribution as torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from scmodtt.module._sampling import (
    INVERSE_CDF_MAX_MEAN,
    RECURRENCE_STEPS,
    TAIL_BLOCK,
    sample_negative_binomial,
)


@pytest.mark.parametrize(
    ("mean", "theta"),
    [(0.05, 0.5), (0.7, 2.0), (3.0, 0.3), (INVERSE_CDF_MAX_MEAN + 12.0, 4.0), (2.0, 50.0)],
)
def test_sampler_matches_the_negative_binomial_pmf(mean, theta):
    n = 200_000
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        draws = sample_negative_binomial(torch.full((n,), mean), torch.tensor([theta])).numpy()
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    # scipy's nbinom(n=θ, p=θ/(θ+μ)) is the same NB.
    reference = stats.nbinom(theta, theta / (theta + mean))
    assert abs(draws.mean() - mean) < 4 * np.sqrt(reference.var() / n)
    support = np.arange(12)
    observed = np.array([(draws == k).mean() for k in support])
    np.testing.assert_allclose(observed, reference.pmf(support), atol=4e-3)


def test_sampler_zero_inflation_and_determinism():
    mu = torch.full((100_000,), 2.0)
    theta = torch.tensor([1.0])
    logits = torch.full((100_000,), 0.0)  # half the entries inflated to zero
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        first = sample_negative_binomial(mu, theta, logits)
        torch.manual_seed(1)
        second = sample_negative_binomial(mu, theta, logits)
    torch.testing.assert_close(first, second)
    expected_zero = 0.5 + 0.5 * stats.nbinom(1.0, 1.0 / 3.0).pmf(0)
    assert abs((first == 0).float().mean().item() - expected_zero) < 0.01


def test_sampler_long_tail_beyond_the_recurrence():
    """Overdispersed genes (small θ) reach counts far past the recurrence's steps: the blocked
    closed-form tail keeps their survival function exact."""
    n, mean, theta = 200_000, 6.0, 0.05
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        draws = sample_negative_binomial(torch.full((n,), mean), torch.tensor([theta])).numpy()
    reference = stats.nbinom(theta, theta / (theta + mean))
    assert draws.max() > RECURRENCE_STEPS + TAIL_BLOCK  # the tail needed more than one block
    for threshold in (RECURRENCE_STEPS, 50, 200, 600):
        expected = reference.sf(threshold)
        assert abs((draws > threshold).mean() - expected) < 4 * np.sqrt(expected / n) + 1e-4
    assert abs(draws.mean() - mean) < 4 * np.sqrt(reference.var() / n)

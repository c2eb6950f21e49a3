"""The per-non-zero log-probabilities equal scvi-tools' dense ones, values and gradients."""

from __future__ import annotations

import pytest
import torch
from scvi.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedNegativeBinomial,
)

from scmodtt.module._likelihoods import (
    SparseNegativeBinomial,
    SparseNegativeBinomialMixture,
    SparseZeroInflatedNegativeBinomial,
)


def _counts(kind: str, generator: torch.Generator) -> torch.Tensor:
    counts = torch.poisson(torch.full((24, 30), 0.6), generator=generator)
    if kind == "all_zero_rows":
        counts[:5] = 0
    elif kind == "dense":
        counts = counts + 1
    elif kind == "zeros":
        counts = torch.zeros_like(counts)
    return counts


def _parameters(generator: torch.Generator) -> dict[str, torch.Tensor]:
    shape = (24, 30)
    return {
        "mu": (torch.rand(shape, generator=generator) * 3 + 0.05).requires_grad_(),
        "mu2": (torch.rand(shape, generator=generator) * 6 + 0.5).requires_grad_(),
        "theta": (torch.rand(30, generator=generator) * 4 + 0.1).requires_grad_(),
        "logits": torch.randn(shape, generator=generator).requires_grad_(),
    }


def _build(name: str, sparse: bool, p: dict):
    if name == "nb":
        cls = SparseNegativeBinomial if sparse else NegativeBinomial
        return cls(mu=p["mu"], theta=p["theta"])
    if name == "zinb":
        cls = SparseZeroInflatedNegativeBinomial if sparse else ZeroInflatedNegativeBinomial
        return cls(mu=p["mu"], theta=p["theta"], zi_logits=p["logits"])
    cls = SparseNegativeBinomialMixture if sparse else NegativeBinomialMixture
    return cls(mu1=p["mu"], mu2=p["mu2"], theta1=p["theta"], mixture_logits=p["logits"])


@pytest.mark.parametrize("name", ["nb", "zinb", "nbmixture"])
@pytest.mark.parametrize("kind", ["sparse", "all_zero_rows", "dense", "zeros"])
def test_sparse_log_prob_equals_dense(name, kind):
    generator = torch.Generator().manual_seed(0)
    counts = _counts(kind, generator)
    results = []
    for sparse in (False, True):
        parameters = _parameters(torch.Generator().manual_seed(1))
        log_prob = _build(name, sparse, parameters).log_prob(counts)
        log_prob.sum().backward()
        results.append((log_prob.detach(), {k: v.grad for k, v in parameters.items()}))
    (dense, dense_grads), (fast, fast_grads) = results
    torch.testing.assert_close(fast, dense, atol=1e-5, rtol=1e-5)
    for key, grad in dense_grads.items():
        if grad is None:
            assert fast_grads[key] is None
            continue
        torch.testing.assert_close(fast_grads[key], grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["nb", "zinb", "nbmixture"])
def test_non_integer_counts_warn_as_scvi_tools_does(name):
    """Outside the support the fast path gives scvi-tools' own warning, and the same value."""
    counts = _counts("sparse", torch.Generator().manual_seed(0)) + 0.5
    messages, values = [], []
    for sparse in (False, True):
        distribution = _build(name, sparse, _parameters(torch.Generator().manual_seed(1)))
        distribution._validate_args = True
        with pytest.warns(UserWarning) as caught:
            values.append(distribution.log_prob(counts).detach())
        messages.append({str(w.message) for w in caught})
    assert messages[0] == messages[1]
    assert "within the support" in " ".join(messages[1])
    torch.testing.assert_close(values[1], values[0], atol=1e-5, rtol=1e-5)

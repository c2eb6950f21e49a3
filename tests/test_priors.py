"""Priors: the conditional flow (known answers), the Gaussian priors, and MODTT's use of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scmodtt.metrics import mmd_rbf
from scmodtt.module._priors import (
    ConditionalFlowPrior,
    LabelGaussianPrior,
    per_label_gaussian_draws,
    per_label_moments,
)

#: Centres of the four modes of label 0 and the two of label 1 in the known 2-D target.
_MODES = {0: [(-3.0, -3.0), (-3.0, 3.0), (3.0, -3.0), (3.0, 3.0)], 1: [(8.0, 0.0), (12.0, 0.0)]}


def _target(n_per_label: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label 0: four tight modes on a square; label 1: two modes far to the right."""
    rng = np.random.default_rng(seed)
    values, labels = [], []
    for label, modes in _MODES.items():
        picks = rng.integers(len(modes), size=n_per_label)
        values.append(np.asarray(modes)[picks] + 0.3 * rng.standard_normal((n_per_label, 2)))
        labels.append(np.full(n_per_label, label))
    return np.concatenate(values), np.concatenate(labels)


@pytest.fixture(scope="module")
def fitted_flow():
    values, labels = _target(1500, seed=0)
    flow = ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1, n_hidden=64, n_layers=3)
    losses = flow.fit(
        torch.as_tensor(values, dtype=torch.float32),
        torch.as_tensor(labels),
        torch.zeros(len(labels), dtype=torch.long),
        max_epochs=120,
        seed=0,
    )
    return flow, losses


def _flow_draws(flow, label: int, n: int, seed: int, **kwargs) -> np.ndarray:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = flow.sample(
            torch.full((n,), label), torch.zeros(n, dtype=torch.long), **kwargs
        ).numpy()
    return draws


def test_flow_beats_one_gaussian_on_a_multimodal_target(fitted_flow):
    flow, losses = fitted_flow
    assert losses[-1] < 0.7 * losses[0]
    values, labels = _target(1500, seed=0)
    fresh, fresh_labels = _target(600, seed=1)
    reference = fresh[fresh_labels == 0]
    flow_draws = _flow_draws(flow, 0, 600, seed=2)
    gaussian_draws = per_label_gaussian_draws(
        values, labels, np.zeros(600, dtype=int), np.random.default_rng(2)
    )
    flow_mmd = mmd_rbf(reference, flow_draws)
    gaussian_mmd = mmd_rbf(reference, gaussian_draws)
    assert flow_mmd < 0.25 * gaussian_mmd
    # Most flow draws sit near one of the four modes; a single Gaussian puts mass in the middle.
    modes = np.asarray(_MODES[0])
    distance = np.linalg.norm(flow_draws[:, None] - modes[None], axis=-1).min(1)
    assert np.mean(distance < 1.5) > 0.85
    assert np.mean(np.linalg.norm(gaussian_draws, axis=1) < 1.5) > 0.05


def test_conditional_samples_land_in_their_label_region(fitted_flow):
    flow, _ = fitted_flow
    right = _flow_draws(flow, 1, 400, seed=3)
    left = _flow_draws(flow, 0, 400, seed=3)
    assert np.mean(right[:, 0] > 6.0) > 0.95
    assert np.mean(left[:, 0] < 5.0) > 0.95
    # Both modes of label 1 are used, in about equal shares.
    share_far = np.mean(right[:, 0] > 10.0)
    assert 0.3 < share_far < 0.7


def test_guidance_sharpens_and_zero_guidance_ignores_the_label(fitted_flow):
    flow, _ = fitted_flow
    guided = _flow_draws(flow, 1, 400, seed=4, guidance=3.0)
    assert np.mean(guided[:, 0] > 6.0) > 0.95
    unconditional = _flow_draws(flow, 1, 800, seed=4, guidance=0.0)
    # Without the label the flow samples the mixture of both labels (equal shares in the data).
    assert 0.3 < np.mean(unconditional[:, 0] > 6.0) < 0.7


def test_flow_fit_and_sample_are_deterministic():
    values, labels = _target(200, seed=5)
    draws = []
    for _ in range(2):
        flow = ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1, n_hidden=16, n_layers=1)
        flow.fit(
            torch.as_tensor(values, dtype=torch.float32),
            torch.as_tensor(labels),
            torch.zeros(len(labels), dtype=torch.long),
            max_epochs=3,
            seed=7,
        )
        draws.append(_flow_draws(flow, 1, 50, seed=8))
        assert not any(p.requires_grad for p in flow.parameters())  # frozen outside `fit`
    np.testing.assert_array_equal(draws[0], draws[1])


def test_flow_skips_rare_labels():
    values, labels = _target(50, seed=6)
    labels[:45] = 1  # label 0 keeps 5 cells
    flow = ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1, n_hidden=16, n_layers=1)
    flow.fit(
        torch.as_tensor(values, dtype=torch.float32),
        torch.as_tensor(labels),
        torch.zeros(len(labels), dtype=torch.long),
        max_epochs=2,
        min_cells_per_label=10,
    )
    assert flow.fitted_labels.tolist() == [False, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": 0}, "between 1 and"),
        ({"n_steps": 2.5}, "must be an integer"),
        ({"guidance": -1.0}, "`guidance` must be"),
        ({"guidance": float("nan")}, "`guidance` must be"),
        ({"guidance": 50.0}, "`guidance` must be"),
    ],
)
def test_flow_sampling_settings_out_of_range(fitted_flow, kwargs, message):
    flow, _ = fitted_flow
    with pytest.raises(ValueError, match=message):
        flow.sample(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), **kwargs)


def test_label_gaussian_prior_moment_matching():
    prior = LabelGaussianPrior(n_labels=2, n_latent=3)
    loc = torch.tensor([[1.0, 2.0, 3.0]] * 4 + [[-1.0, 0.0, 1.0]] * 4)
    labels = torch.tensor([0] * 4 + [1] * 4)
    for _ in range(300):
        prior.update(torch.distributions.Normal(loc, torch.full_like(loc, 0.5)), labels)
    torch.testing.assert_close(prior.mean, loc[[0, 4]], atol=1e-4, rtol=0)
    torch.testing.assert_close(prior.log_scale.exp(), torch.full((2, 3), 0.5), atol=1e-3, rtol=0)


def test_per_label_moments_known_answer():
    values = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 0.0]])
    moments = per_label_moments(values, np.array([0, 0, 1]), n_labels=3)
    np.testing.assert_allclose(moments[0], [[2.0, 1.0], [10.0, 0.0]])
    np.testing.assert_allclose(moments[1], [[5.0, 0.0], [0.0, 0.0]])
    # A label without cells falls back to all cells.
    np.testing.assert_allclose(moments[2, :, 0], values.mean(0))


# --------------------------------------------------------------------------- MODTT's use


def test_sample_defaults_to_the_fitted_flow(trained_model):
    assert trained_model.is_flow_prior_fitted
    flow = trained_model.sample(n_per_label=30, seed=0)
    again = trained_model.sample(n_per_label=30, seed=0, prior="flow")
    gaussian = trained_model.sample(n_per_label=30, seed=0, prior="gaussian")
    np.testing.assert_array_equal(flow["rna"].X.toarray(), again["rna"].X.toarray())
    assert (flow["rna"].X != gaussian["rna"].X).nnz > 0


def test_flow_draws_library_sizes_with_the_cell_state(trained_model):
    """The flow's library statistics follow the training cells' per-label range."""
    module = trained_model.module
    codes = torch.as_tensor(trained_model._label_codes()[:200])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, libraries = module.draw_cell_states(codes, torch.zeros_like(codes), prior="flow")
    observed = np.log(np.asarray(trained_model.adata["rna"].X.sum(1)).ravel())
    drawn = libraries[:, 0].numpy()
    assert abs(np.median(drawn) - np.median(observed)) < 0.5 * observed.std() + 0.1
    assert np.isfinite(libraries.numpy()).all()


def test_sample_flow_without_fitted_flow_says_how_to_fit(mdata_factory, setup_kwargs, train_kwargs):
    import scmodtt

    mdata = mdata_factory()
    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, n_latent=4, module_dim=2)
    train_kwargs.pop("flow_kwargs")
    model.train(**train_kwargs, flow_prior=False)
    assert not model.is_flow_prior_fitted
    with pytest.raises(ValueError, match="fit_flow_prior"):
        model.sample(n_per_label=3)
    assert model.sample(n_per_label=3, prior="gaussian", seed=0).n_obs > 0
    model.fit_flow_prior(max_epochs=2)
    assert model.is_flow_prior_fitted
    assert model.sample(n_per_label=3, seed=0).n_obs > 0


def test_sample_rare_labels_warn_and_use_the_gaussian(mdata_factory, setup_kwargs, train_kwargs):
    import scmodtt

    mdata = mdata_factory()
    labels = mdata.obs["labels"].astype(str).to_numpy().copy()
    labels[:5] = "rare"
    mdata.obs["labels"] = labels
    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, n_latent=4, module_dim=2)
    with pytest.warns(UserWarning, match=r"\['rare'\].*Gaussian label prior"):
        model.train(**train_kwargs)
    with pytest.warns(UserWarning, match=r"\['rare'\].*Gaussian label prior"):
        synthetic = model.sample({"rare": 4, "label_0": 4}, seed=0)
    assert synthetic.n_obs == 8
    assert list(mdata.obs["labels"][:5]) == ["rare"] * 5  # the user's data is untouched


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "normal"}, "`prior` must be one of"),
        ({"n_steps": 0}, "`n_steps`"),
        ({"guidance": -0.5}, "`guidance`"),
    ],
)
def test_sample_bad_settings(trained_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        trained_model.sample(n_per_label=2, **kwargs)


def test_max_kl_weight_out_of_range(mdata, setup_kwargs, train_kwargs):
    import scmodtt

    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, n_latent=4, module_dim=2)
    with pytest.raises(ValueError, match="max_kl_weight"):
        model.train(**train_kwargs, max_kl_weight=1.5)


@pytest.mark.parametrize("max_epochs", [1, 3, 20])
def test_flow_fit_with_few_steps(max_epochs):
    """Short fits (few optimiser steps) run; the learning-rate schedule adapts."""
    values, labels = _target(40, seed=9)
    flow = ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1, n_hidden=8, n_layers=1)
    losses = flow.fit(
        torch.as_tensor(values, dtype=torch.float32),
        torch.as_tensor(labels),
        torch.zeros(len(labels), dtype=torch.long),
        max_epochs=max_epochs,
        min_cells_per_label=5,
    )
    assert len(losses) == max_epochs and np.isfinite(losses).all()


def test_training_again_starts_in_train_mode(mdata_factory, setup_kwargs, train_kwargs):
    """A second ``train()`` (after the flow fit left the module in eval mode) trains in train
    mode: Lightning finds no module in eval mode at its start."""
    import warnings

    import scmodtt

    mdata = mdata_factory()
    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, n_latent=4, module_dim=2)
    train_kwargs["flow_kwargs"] = {"max_epochs": 2}
    model.train(**train_kwargs)
    assert not model.module.training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train(**train_kwargs)
    assert not [w for w in caught if "eval mode" in str(w.message)]
    assert model.is_flow_prior_fitted


def test_flow_fit_on_posterior_means_or_samples(trained_model):
    """``posterior="means"`` fits the flow to the posterior means only: another flow, still
    deterministic under its seed; anything else is refused before any work."""
    model = trained_model
    state = {k: v.clone() for k, v in model.module.flow_prior.state_dict().items()}
    try:
        with pytest.raises(ValueError, match="'samples' or 'means'"):
            model.fit_flow_prior(max_epochs=2, posterior="mean")
        model.fit_flow_prior(max_epochs=3, seed=5, posterior="means", progress=False)
        means_fit = model.sample(n_per_label=5, seed=0)
        model.fit_flow_prior(max_epochs=3, seed=5, posterior="means", progress=False)
        again = model.sample(n_per_label=5, seed=0)
        np.testing.assert_array_equal(means_fit["rna"].X.toarray(), again["rna"].X.toarray())
        model.fit_flow_prior(max_epochs=3, seed=5, posterior="samples", progress=False)
        samples_fit = model.sample(n_per_label=5, seed=0)
        assert not np.array_equal(means_fit["rna"].X.toarray(), samples_fit["rna"].X.toarray())
    finally:
        model.module.flow_prior.load_state_dict(state)

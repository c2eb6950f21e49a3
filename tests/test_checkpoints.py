"""Lightning checkpoints of MODTT.train: an interrupted training resumes to the same result.

The autoencoder's state that lives outside the optimiser (the moment-matched label prior), the
KL warm-up (epoch counter), early stopping's state, the data split and the random states all
travel in the checkpoint, so resuming after epoch k of N ends bit-identical to an uninterrupted
N-epoch run under the same ``scvi.settings.seed`` (the flow prior, fitted afterwards, too).
"""

from __future__ import annotations

import pytest
import scvi
import torch
from conftest import MODALITIES
from lightning.pytorch.callbacks import Callback

import scmodtt

SEED = 7
N_EPOCHS, STOP_AT = 5, 2
#: Early stopping and KL warm-up are both active across the interruption.
TRAIN_KWARGS = {
    "max_epochs": N_EPOCHS,
    "batch_size": 64,
    "n_epochs_kl_warmup": 4,
    "early_stopping_patience": 3,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "flow_kwargs": {"max_epochs": 3},
}


@pytest.fixture(autouse=True)
def _restore_scvi_seed():
    """These tests set ``scvi.settings.seed``; later tests get the seed they had."""
    seed = scvi.settings.seed
    yield
    scvi.settings.seed = seed


class _Interrupt(Callback):
    """Fails at the start of epoch ``STOP_AT``, after ``STOP_AT`` finished epochs (a crash)."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == STOP_AT:
            raise RuntimeError("simulated interruption")


def _model(mdata_factory):
    mdata = mdata_factory()[:200].copy()
    scmodtt.MODTT.setup_mudata(
        mdata, labels_key="labels", batch_key="batch", modalities=dict(MODALITIES)
    )
    return scmodtt.MODTT(
        mdata, coupling="tt", module_dim=3, n_latent=4, flow_n_hidden=16, flow_n_layers=1
    )


@pytest.fixture
def uninterrupted(mdata_factory):
    scvi.settings.seed = SEED
    model = _model(mdata_factory)
    model.train(**TRAIN_KWARGS)
    return model


def test_resumed_training_equals_uninterrupted(mdata_factory, uninterrupted, tmp_path):
    scvi.settings.seed = SEED
    interrupted = _model(mdata_factory)
    with pytest.raises(RuntimeError, match="simulated interruption"):
        interrupted.train(**TRAIN_KWARGS, checkpoint_dir=tmp_path, callbacks=[_Interrupt()])
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == STOP_AT - 1
    assert "label_prior.second_moment" in "".join(checkpoint["state_dict"])

    # A new session: the same seed, a model built afresh (other weights until the checkpoint
    # loads), and the global random state moved on by unrelated work.
    scvi.settings.seed = SEED
    resumed = _model(mdata_factory)
    torch.rand(100)
    resumed.train(**TRAIN_KWARGS, checkpoint_dir=tmp_path, ckpt_path="last")

    expected, observed = uninterrupted.module.state_dict(), resumed.module.state_dict()
    assert expected.keys() == observed.keys()
    for name in expected:
        torch.testing.assert_close(observed[name], expected[name], rtol=0, atol=0, msg=name)
    assert resumed.module.label_prior.mean.abs().sum() > 0  # the prior did move
    assert resumed.is_flow_prior_fitted
    for split in ("train_indices", "validation_indices", "test_indices"):
        assert (getattr(resumed, split) == getattr(uninterrupted, split)).all(), split
    for metric in ("elbo_train", "elbo_validation"):
        assert list(resumed.history[metric].index) == list(range(N_EPOCHS)), metric
        assert (
            resumed.history[metric]
            .astype(float)
            .equals(uninterrupted.history[metric].astype(float))
        ), metric


def test_resume_keeps_the_checkpoints_split_whatever_the_arguments(mdata_factory, tmp_path):
    scvi.settings.seed = SEED
    first = _model(mdata_factory)
    first.train(**{**TRAIN_KWARGS, "max_epochs": 1, "flow_prior": False}, checkpoint_dir=tmp_path)
    scvi.settings.seed = SEED + 1  # a different seed would draw another split
    resumed = _model(mdata_factory)
    resumed.train(
        **{**TRAIN_KWARGS, "max_epochs": 2, "flow_prior": False},
        train_size=0.5,
        ckpt_path=tmp_path / "last.ckpt",
    )
    assert (resumed.train_indices == first.train_indices).all()
    assert (resumed.validation_indices == first.validation_indices).all()
    assert list(resumed.history["elbo_train"].index) == [0, 1]


def test_missing_checkpoint_is_a_clear_error(mdata_factory, tmp_path):
    model = _model(mdata_factory)
    with pytest.raises(FileNotFoundError, match="No checkpoint to resume from.*nowhere.ckpt"):
        model.train(**TRAIN_KWARGS, ckpt_path=tmp_path / "nowhere.ckpt")
    with pytest.raises(FileNotFoundError, match="holds 'last.ckpt' once an epoch has finished"):
        model.train(**TRAIN_KWARGS, ckpt_path=tmp_path)
    with pytest.raises(ValueError, match='`ckpt_path="last"` resumes from `checkpoint_dir`'):
        model.train(**TRAIN_KWARGS, ckpt_path="last")
    with pytest.raises(ValueError, match="`checkpoint_every_n_epochs` must be at least 1"):
        model.train(**TRAIN_KWARGS, checkpoint_dir=tmp_path, checkpoint_every_n_epochs=0)


def test_checkpoint_of_other_data_is_refused(mdata_factory, tmp_path):
    scvi.settings.seed = SEED
    _model(mdata_factory).train(
        **{**TRAIN_KWARGS, "max_epochs": 1, "flow_prior": False}, checkpoint_dir=tmp_path
    )
    mdata = mdata_factory()[:150].copy()
    scmodtt.MODTT.setup_mudata(
        mdata, labels_key="labels", batch_key="batch", modalities=dict(MODALITIES)
    )
    model = scmodtt.MODTT(mdata, coupling="tt", module_dim=3, n_latent=4)
    with pytest.raises(ValueError, match="written while training on 200 cells; this model's"):
        model.train(**TRAIN_KWARGS, ckpt_path=tmp_path)

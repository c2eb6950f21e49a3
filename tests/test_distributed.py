"""Distributed training keeps every rank's model identical (2 CPU processes, gloo).

- the label prior's all-reduce on its own;
- ``MODTT.train`` end to end under ``strategy="ddp_find_unused_parameters_true"``, each rank
  running the whole ``train()`` as under ``torchrun`` or Lightning's launch of a script (the
  processes set the environment ``torchrun`` sets), the flow prior included;
- the strategy scvi-tools documents for notebooks, where Lightning forks the processes itself and
  the main process takes rank 0's model.

The processes are forked from the test process: they need no new ``import scvi`` (about 10 s per
process), so each test takes about a second.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import scvi
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import MODALITIES
from torch.distributions import Normal

import scmodtt
from scmodtt.model._flow import _synchronise_across_processes
from scmodtt.module import LabelGaussianPrior

N_LABELS, N_LATENT, N_STEPS, PER_RANK = 4, 3, 5, 16


def _batches(seed: int = 0):
    """N_STEPS global mini-batches of 2 × PER_RANK cells: posterior moments and labels."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(N_STEPS):
        loc = torch.randn(2 * PER_RANK, N_LATENT, generator=generator) * 2
        scale = torch.rand(2 * PER_RANK, N_LATENT, generator=generator) + 0.1
        # Rank 1 sees only labels 2 and 3, rank 0 all four: their local moments differ.
        labels = torch.cat(
            [
                torch.randint(0, N_LABELS, (PER_RANK,), generator=generator),
                torch.randint(2, N_LABELS, (PER_RANK,), generator=generator),
            ]
        )
        yield loc, scale, labels


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    prior = LabelGaussianPrior(N_LABELS, N_LATENT)
    part = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    for loc, scale, labels in _batches():
        prior.update(Normal(loc[part], scale[part]), labels[part])
    torch.save(prior.state_dict(), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_label_prior_is_identical_on_every_rank_and_equals_one_process(tmp_path):
    _run_forked(_rank, (_free_port(), str(tmp_path)))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    single = LabelGaussianPrior(N_LABELS, N_LATENT)
    for loc, scale, labels in _batches():
        single.update(Normal(loc, scale), labels)
    for name, value in single.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value)
    # The ranks' local data differ, so without the all-reduce they would not agree.
    assert not torch.allclose(single.mean[0], torch.zeros(N_LATENT))


# ---------------------------------------------------------------------- MODTT.train end to end
SEED = 3
#: Cells per rank and step; the single-process reference sees both ranks' share per step.
PER_RANK_BATCH = 32
DDP_KWARGS = {
    "max_epochs": 2,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "flow_kwargs": {"max_epochs": 3},
}
#: Wall-clock limit of the forked ranks: a failing rank ends the test, a hung one must too.
RANK_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _restore_scvi_seed():
    """These tests set ``scvi.settings.seed``; later tests get the seed they had."""
    seed = scvi.settings.seed
    yield
    scvi.settings.seed = seed


def _registered_mdata(mdata_factory):
    mdata = mdata_factory()[:200].copy()
    scmodtt.MODTT.setup_mudata(
        mdata, labels_key="labels", batch_key="batch", modalities=dict(MODALITIES)
    )
    return mdata


def _model(mdata):
    scvi.settings.seed = SEED
    return scmodtt.MODTT(
        mdata, coupling="tt", module_dim=3, n_latent=4, flow_n_hidden=16, flow_n_layers=1
    )


def _train_rank(rank: int, port: int, out: str, mdata) -> None:
    """One of 2 processes, started as ``torchrun`` starts them (forked: ``mdata`` is inherited)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        NODE_RANK="0",
    )
    torch.set_num_threads(1)
    model = _model(mdata)
    model.train(
        accelerator="cpu",
        devices=2,
        strategy="ddp_find_unused_parameters_true",
        batch_size=PER_RANK_BATCH,
        **DDP_KWARGS,
    )
    assert dist.is_initialized()  # the process group outlives the fit: the flow used it
    # The safeguard itself: a flow that differs on one rank is replaced by rank 0's.
    probe = scmodtt.module.ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1)
    probe.centre.fill_(float(rank))
    probe.fitted_labels[rank] = True
    _synchronise_across_processes(probe)
    torch.save(
        {
            "state": model.module.state_dict(),
            "train_loss": model.history["train_loss"].astype(float).to_numpy().ravel()
            if rank == 0
            else None,
            "probe": probe.state_dict(),
        },
        f"{out}/rank{rank}.pt",
    )


def _run_forked(fn, args, nprocs: int = 2) -> None:
    context = mp.start_processes(fn, args=args, nprocs=nprocs, start_method="fork", join=False)
    deadline = time.monotonic() + RANK_TIMEOUT_S
    while not context.join(timeout=1):  # raises as soon as a rank fails
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"The {nprocs} training processes did not finish in {RANK_TIMEOUT_S} s.")


def test_ddp_training_end_to_end_gives_every_rank_the_same_model(mdata_factory, tmp_path):
    mdata = _registered_mdata(mdata_factory)
    _run_forked(_train_rank, (_free_port(), str(tmp_path), mdata))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    states = [rank["state"] for rank in ranks]
    assert states[0].keys() == states[1].keys()
    for name in states[0]:  # weights, label prior and flow prior, bit for bit
        assert torch.equal(states[0][name], states[1][name]), name
    assert any(name.startswith("label_prior.") for name in states[0])
    assert states[0]["flow_prior.fitted_labels"].all()
    for name, value in ranks[0]["probe"].items():
        assert torch.equal(value, ranks[1]["probe"][name]), name
    assert ranks[1]["probe"]["centre"].eq(0).all()  # rank 0's

    # The same global batch in one process: the same number of steps, other draws.
    single = _model(_registered_mdata(mdata_factory))
    single.train(batch_size=2 * PER_RANK_BATCH, **DDP_KWARGS)
    expected = single.history["train_loss"].astype(float).to_numpy().ravel()
    observed = ranks[0]["train_loss"]
    assert len(observed) == len(expected) == DDP_KWARGS["max_epochs"]
    torch.testing.assert_close(
        torch.as_tensor(observed), torch.as_tensor(expected), rtol=2e-3, atol=0
    )
    assert observed[-1] < observed[0]


def test_interactive_ddp_strategy_trains_in_the_main_process(mdata_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # scvi-tools writes the DDP history to ./lightning_logs
    model = _model(_registered_mdata(mdata_factory))
    initial = {name: value.clone() for name, value in model.module.state_dict().items()}
    with pytest.warns(UserWarning, match="early_stopping was automatically disabled"):
        model.train(
            accelerator="cpu",
            devices=2,
            strategy="ddp_notebook_find_unused_parameters_true",
            batch_size=PER_RANK_BATCH,
            early_stopping=True,
            **DDP_KWARGS,
        )
    assert not dist.is_initialized()  # the processes were Lightning's own
    trained = model.module.state_dict()  # rank 0's, brought back by Lightning
    assert not torch.equal(trained["label_prior.mean"], initial["label_prior.mean"])
    weights = [name for name in trained if not name.startswith(("label_prior.", "flow_prior."))]
    assert any(not torch.equal(trained[name], initial[name]) for name in weights)
    assert model.is_flow_prior_fitted  # fitted once, in the main process
    assert len(model.history["train_loss"]) == DDP_KWARGS["max_epochs"]


def test_ddp_with_a_backend_this_machine_lacks_fails_with_its_error(mdata_factory, tmp_path):
    """NCCL on a CPU-only build: each rank raises torch's error and so does ``train()``, no hang."""
    if dist.is_nccl_available():
        pytest.skip("this torch build has NCCL; the test needs a backend it lacks")
    from lightning.pytorch.strategies import DDPStrategy

    model = _model(_registered_mdata(mdata_factory))
    strategy = DDPStrategy(start_method="fork", process_group_backend="nccl")
    started = time.monotonic()
    with pytest.raises(Exception, match="NCCL"):
        model.train(accelerator="cpu", devices=2, strategy=strategy, **DDP_KWARGS)
    assert time.monotonic() - started < RANK_TIMEOUT_S
    assert not dist.is_initialized()

"""Distributed training keeps every rank's label prior identical (2 CPU processes, gloo)."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributions import Normal

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
    mp.start_processes(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    single = LabelGaussianPrior(N_LABELS, N_LATENT)
    for loc, scale, labels in _batches():
        single.update(Normal(loc, scale), labels)
    for name, value in single.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value)
    # The ranks' local data differ, so without the all-reduce they would not agree.
    assert not torch.allclose(single.mean[0], torch.zeros(N_LATENT))

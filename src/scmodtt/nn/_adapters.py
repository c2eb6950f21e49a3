"""Low-rank adapters on module tokens, for mapping new data onto a frozen reference."""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenAdapter(nn.Module):
    """A residual low-rank update of each module's token: ``t_m + U_m V_m t_m``.

    One rank-``r`` map per module (MoRE-style light adapters on a frozen backbone): ``2·M·d_e·r``
    weights, a small fraction of the network. ``U`` starts at zero, so an untrained adapter is the
    identity and the query model starts as the reference.

    Parameters
    ----------
    n_modules
        Number of modules ``M``.
    module_dim
        Token size ``d_e``.
    rank
        Rank ``r`` of each module's update.

    Examples
    --------
    >>> adapter = TokenAdapter(n_modules=4, module_dim=8, rank=2)
    >>> tokens = torch.randn(3, 4, 8)
    >>> bool(torch.equal(adapter(tokens), tokens))
    True

    """

    def __init__(self, n_modules: int, module_dim: int, rank: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"The adapter rank must be a positive integer, got {rank!r}.")
        self.rank = rank
        self.down = nn.Parameter(torch.randn(n_modules, rank, module_dim) / math.sqrt(module_dim))
        self.up = nn.Parameter(torch.zeros(n_modules, module_dim, rank))

    def delta(self, tokens: torch.Tensor) -> torch.Tensor:
        """The update ``U_m V_m t_m`` of tokens ``(n, M, d_e)``, all modules in two products."""
        projected = torch.einsum("mrd,nmd->nmr", self.down, tokens)
        return torch.einsum("mdr,nmr->nmd", self.up, projected)

    def forward(self, tokens: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Adapted tokens; ``gate`` ``(n,)`` (0 or 1) applies the update to some cells only."""
        delta = self.delta(tokens)
        if gate is not None:
            delta = delta * gate.reshape(-1, 1, 1).to(delta.dtype)
        return tokens + delta

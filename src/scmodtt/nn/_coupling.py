"""Couplings between module tokens.

A dense map or a Tensor-Train (block-TT) map of the same shape.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

COUPLINGS = ("dense", "tt")


class TokenCoupling(nn.Module):
    """Mix the ``(M, d_e)`` module tokens of each cell with one linear map on ``M·d_e`` features.

    Parameters
    ----------
    n_modules
        Number of modules ``M``.
    module_dim
        Token size ``d_e``.
    coupling
        ``"dense"``: ``nn.Linear(M·d_e, M·d_e)``, ``(M·d_e)²`` weights. ``"tt"``: the same map
        factorised as a block Tensor-Train on the tensorised shape ``(M, d_e) -> (M, d_e)``
        (tensorly-torch ``FactorizedLinear``, factorization ``"blocktt"``), ``M²·r + d_e²·r``
        weights, initialised directly in factorised form.
    tt_rank
        Integer TT rank ``r`` (only for ``coupling="tt"``).

    """

    def __init__(
        self,
        n_modules: int,
        module_dim: int,
        coupling: Literal["dense", "tt"] = "tt",
        tt_rank: int = 4,
    ):
        super().__init__()
        if coupling not in COUPLINGS:
            raise ValueError(f"`coupling` must be one of {COUPLINGS}, got {coupling!r}.")
        self.coupling = coupling
        self.n_modules = n_modules
        self.module_dim = module_dim
        width = n_modules * module_dim
        if coupling == "dense":
            self.linear = nn.Linear(width, width)
        else:
            if int(tt_rank) != tt_rank or tt_rank < 1:
                raise ValueError(f"`tt_rank` must be a positive integer, got {tt_rank!r}.")
            # Imported here: importing tltorch switches tensorly's global backend to pytorch.
            import tltorch

            self.linear = tltorch.FactorizedLinear(
                in_tensorized_features=(n_modules, module_dim),
                out_tensorized_features=(n_modules, module_dim),
                factorization="blocktt",
                rank=int(tt_rank),
                # Rebuilding the (M·d_e)² matrix once per step is faster on CPU than contracting
                # the mini-batch with each core in turn, at every size MODTT uses.
                implementation="reconstructed",
            )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(n, M, d_e) -> (n, M, d_e)``."""
        flat = tokens.reshape(tokens.shape[0], -1)
        return self.linear(flat).reshape(tokens.shape)

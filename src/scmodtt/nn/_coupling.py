"""Couplings between module tokens.

A dense map or a Tensor-Train (block-TT) map of the same shape.

A block-TT map on ``(M, d_e) -> (M, d_e)`` has two cores, ``G1`` (M × M × r) and ``G2``
(r × d_e × d_e). Applied to a mini-batch of ``n`` cells it can either be rebuilt as the full
``(M·d_e)²`` matrix (``M²·d_e²·r`` to rebuild, ``n·(M·d_e)²`` to apply) or contracted with the
cores in turn (``n·M·d_e·r·(M + d_e)``); :func:`tt_contraction_is_cheaper` picks per mini-batch.
The contraction is two matrix products written here: tensorly-torch's ``"factorized"``
implementation contracts through a generic einsum path that was not faster than rebuilding at any
size we measured.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

COUPLINGS = ("dense", "tt")
#: How many times fewer multiply-adds the TT contraction needs before it replaces rebuilding.
CONTRACTION_MARGIN = 2.0


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
        tt_rank: int = 8,
    ):
        super().__init__()
        if coupling not in COUPLINGS:
            raise ValueError(f"`coupling` must be one of {COUPLINGS}, got {coupling!r}.")
        self.coupling = coupling
        self.n_modules = n_modules
        self.module_dim = module_dim
        self.tt_rank = int(tt_rank) if coupling == "tt" else None
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
                # Used when rebuilding is the cheaper way (see forward).
                implementation="reconstructed",
            )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(n, M, d_e) -> (n, M, d_e)``."""
        n = tokens.shape[0]
        if self.coupling == "tt" and tt_contraction_is_cheaper(
            n, self.n_modules, self.module_dim, self.tt_rank
        ):
            return self.contract(tokens)
        return self.linear(tokens.reshape(n, -1)).reshape(tokens.shape)

    def contract(self, tokens: torch.Tensor) -> torch.Tensor:
        """The TT map applied core by core, never forming the ``(M·d_e)²`` matrix."""
        n, n_modules, module_dim = tokens.shape
        module_core, token_core = self.linear.weight.factors  # (1, M, M, r), (r, d_e, d_e, 1)
        rank = module_core.shape[-1]
        # t[n, c, k, b] = Σ_d x[n, c, d] · G2[k, b, d]
        token_map = token_core[..., 0].permute(2, 0, 1).reshape(module_dim, rank * module_dim)
        mixed = (tokens.reshape(n * n_modules, module_dim) @ token_map).view(
            n, n_modules, rank, module_dim
        )
        # y[n, a, b] = Σ_{c, k} G1[a, c, k] · t[n, c, k, b]
        module_map = module_core[0].reshape(n_modules, n_modules * rank)
        stacked = mixed.permute(1, 2, 0, 3).reshape(n_modules * rank, n * module_dim)
        out = (module_map @ stacked).view(n_modules, n, module_dim).transpose(0, 1)
        return out + self.linear.bias.view(n_modules, module_dim)


def tt_contraction_is_cheaper(n_cells: int, n_modules: int, module_dim: int, rank: int) -> bool:
    """Whether contracting ``n_cells`` tokens core by core costs fewer multiply-adds than
    rebuilding the block-TT matrix and applying it (see the module notes).

    The contraction must be :data:`CONTRACTION_MARGIN` times cheaper: its two products come with
    two permuting copies of the intermediate, and one large product runs closer to peak speed
    (measured on CPU, one thread, n = 256: (M, d_e, r) = (70, 16, 4) contracts 2.1× faster,
    (300, 8, 4) 2.2×; (70, 16, 8), 1.7× fewer multiply-adds, is 1.3× slower contracted;
    (70, 8, 8), the default, 2.8× slower). With ``M ≫ d_e`` this means ``rank ≲ d_e / 2``.
    """
    width = n_modules * module_dim
    contracted = n_cells * width * rank * (n_modules + module_dim)
    rebuilt = width * width * rank + n_cells * width * width
    return CONTRACTION_MARGIN * contracted < rebuilt

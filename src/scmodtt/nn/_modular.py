"""Per-module linear maps between features and module tokens, as one batched operation.

A module membership is given in coordinate form: entry ``i`` says that feature
``feature_index[i]`` belongs to module ``module_index[i]``. Each entry owns its own ``d_e``
weights, so module ``m``'s encoder is the linear map from its features to its ``d_e``-dim token,
exactly as if every module had its own ``nn.Linear``; but all modules are evaluated together as
one sparse matrix product (:class:`~scmodtt.nn._sparse.SparsePattern`) instead of a Python loop
over modules. The cost is entries × ``d_e`` × cells, whatever the number of features and modules,
and overlapping modules (gene sets) need no padding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._sparse import SparsePattern


class _MembershipMixin:
    """Set-up shared by the modular maps: membership buffers and token size.

    The coordinate-form membership is registered as buffers so it moves and saves with the module.
    """

    def _set_up(
        self,
        feature_index: torch.Tensor,
        module_index: torch.Tensor,
        n_features: int,
        n_modules: int,
        module_dim: int,
    ) -> None:
        feature_index = torch.as_tensor(feature_index, dtype=torch.long)
        module_index = torch.as_tensor(module_index, dtype=torch.long)
        if feature_index.shape != module_index.shape or feature_index.ndim != 1:
            raise ValueError("`feature_index` and `module_index` must be 1-d and of equal length.")
        self.n_features = n_features
        self.n_modules = n_modules
        self.register_buffer("feature_index", feature_index)
        self.register_buffer("module_index", module_index)
        self.register_buffer(
            "module_sizes", torch.bincount(module_index, minlength=n_modules).float()
        )
        self.register_buffer(
            "feature_multiplicity", torch.bincount(feature_index, minlength=n_features).float()
        )
        self.module_dim = module_dim


class ModularEncoder(_MembershipMixin, nn.Module):
    """Map each module's features to a ``module_dim`` token: ``(n, F) -> (n, M, module_dim)``.

    Parameters
    ----------
    feature_index, module_index
        Coordinate form of the membership (one entry per feature-in-module).
    n_features
        Number of input features ``F``.
    n_modules
        Number of modules ``M``.
    module_dim
        Token size ``d_e``.

    """

    def __init__(
        self,
        feature_index: torch.Tensor,
        module_index: torch.Tensor,
        n_features: int,
        n_modules: int,
        module_dim: int,
    ):
        super().__init__()
        self._set_up(feature_index, module_index, n_features, n_modules, module_dim)
        # Same scale as nn.Linear's default: uniform(±1/sqrt(fan_in)) with fan_in = module size.
        fan_in = self.module_sizes[self.module_index].clamp(min=1.0)
        bound = (1.0 / fan_in.sqrt()).unsqueeze(-1)
        self.weight = nn.Parameter((torch.rand(len(module_index), module_dim) * 2 - 1) * bound)
        self.bias = nn.Parameter(torch.zeros(n_modules, module_dim))
        # The map's (M·d_e × features) matrix: entry i's weight k at row module_index[i]·d_e + k,
        # column feature_index[i]; values in the order of weight.reshape(-1).
        token_slot = self.module_index.unsqueeze(1) * module_dim + torch.arange(module_dim)
        self.pattern = SparsePattern(
            token_slot.reshape(-1),
            self.feature_index.unsqueeze(1).expand(-1, module_dim).reshape(-1),
            (n_modules * module_dim, n_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self.pattern.right_matmul(x, self.weight.reshape(-1))
        return flat.view(x.shape[0], self.n_modules, self.module_dim) + self.bias


class ModularDecoder(_MembershipMixin, nn.Module):
    """Map module tokens back to per-feature outputs: ``(n, M, d_e) -> (n, n_outputs, F)``.

    Every module predicts each of its features from its own token; a feature in several modules
    gets the average of their predictions.

    Parameters
    ----------
    feature_index, module_index
        Coordinate form of the membership.
    n_features
        Number of output features ``F``.
    n_modules
        Number of modules ``M``.
    module_dim
        Token size ``d_e``.
    n_outputs
        Parameters predicted per feature (e.g. 2 for a mean and a zero-inflation logit).

    """

    def __init__(
        self,
        feature_index: torch.Tensor,
        module_index: torch.Tensor,
        n_features: int,
        n_modules: int,
        module_dim: int,
        n_outputs: int = 1,
    ):
        super().__init__()
        self._set_up(feature_index, module_index, n_features, n_modules, module_dim)
        self.n_outputs = n_outputs
        bound = 1.0 / math.sqrt(module_dim)
        self.weight = nn.Parameter(
            (torch.rand(n_outputs, len(module_index), module_dim) * 2 - 1) * bound
        )
        self.bias = nn.Parameter(torch.zeros(n_outputs, n_features))
        # The map's (outputs·features × M·d_e) matrix: output o of entry i, weight k at row
        # o·F + feature_index[i], column module_index[i]·d_e + k; values as weight.reshape(-1).
        shape = (n_outputs, len(self.module_index), module_dim)
        rows = torch.arange(n_outputs).view(-1, 1, 1) * n_features + self.feature_index.view(
            1, -1, 1
        )
        cols = self.module_index.view(1, -1, 1) * module_dim + torch.arange(module_dim)
        self.pattern = SparsePattern(
            rows.expand(shape).reshape(-1),
            cols.expand(shape).reshape(-1),
            (n_outputs * n_features, n_modules * module_dim),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # A feature in several modules averages their predictions: scale its weights instead.
        weight = self.weight / self.feature_multiplicity.clamp(min=1.0)[self.feature_index, None]
        flat = self.pattern.right_matmul(tokens.reshape(tokens.shape[0], -1), weight.reshape(-1))
        return flat.view(tokens.shape[0], self.n_outputs, self.n_features) + self.bias

"""Per-module linear maps between features and module tokens, as one batched operation.

A module membership is given in coordinate form: entry ``i`` says that feature
``feature_index[i]`` belongs to module ``module_index[i]``. Each entry owns its own ``d_e``
weights, so module ``m``'s encoder is the linear map from its features to its ``d_e``-dim token,
exactly as if every module had its own ``nn.Linear``; but all modules are evaluated together with
one gather and one ``index_add`` instead of a Python loop over modules. This also handles
overlapping modules (gene sets) without padding.
"""

from __future__ import annotations

import math

import torch
from torch import nn


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contributions = x.index_select(1, self.feature_index).unsqueeze(-1) * self.weight
        tokens = self.bias.expand(x.shape[0], -1, -1).clone()
        return tokens.scatter_add(
            1, _expand_index(self.module_index, contributions.shape, dim=1), contributions
        )


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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n_cells, n_entries = tokens.shape[0], len(self.module_index)
        gathered = tokens.gather(
            1, _expand_index(self.module_index, (n_cells, n_entries, self.module_dim), dim=1)
        )
        # Broadcast multiply-and-sum over d_e: (n, 1, entries, d_e) * (outputs, entries, d_e).
        per_entry = (gathered.unsqueeze(1) * self.weight).sum(-1)
        summed = torch.zeros(
            n_cells, self.n_outputs, self.n_features, dtype=tokens.dtype, device=tokens.device
        ).scatter_add(2, _expand_index(self.feature_index, per_entry.shape, dim=2), per_entry)
        return summed / self.feature_multiplicity.clamp(min=1.0) + self.bias


def _expand_index(index: torch.Tensor, shape: tuple[int, ...], dim: int) -> torch.Tensor:
    """Broadcast a 1-d index along ``dim`` of ``shape`` (a view, no copy).

    gather/scatter_add are used instead of index_select/index_add (and einsum) because on CPU
    index_add loops over the indices one by one and its result depends on thread timing, while
    gather and scatter_add are vectorised kernels that add in a fixed order, so training is both
    fast and reproducible under a seed. An einsum over entries becomes a bmm of thousands of tiny
    matrices.
    """
    view = [1] * len(shape)
    view[dim] = -1
    return index.view(view).expand(shape)

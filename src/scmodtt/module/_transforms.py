"""On-the-fly versions of the shared normalized space in torch.

See :mod:`scmodtt._normalization`.
"""

from __future__ import annotations

import torch

from .._constants import RNA_TARGET_SUM


def log_library(counts: torch.Tensor) -> torch.Tensor:
    """``log`` of each cell's total counts, ``(n, 1)``; empty cells get ``log(1)``."""
    return torch.log(counts.sum(dim=-1, keepdim=True).clamp(min=1.0))


def log1p_normalize(counts: torch.Tensor, target_sum: float = RNA_TARGET_SUM) -> torch.Tensor:
    """``log1p(counts / library * target_sum)``."""
    library = counts.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return torch.log1p(counts / library * target_sum)


def clr(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cell centred log-ratio and the per-cell centre ``mean_j log1p(x_j)``, ``(n, 1)``."""
    logged = torch.log1p(counts)
    centre = logged.mean(dim=-1, keepdim=True)
    return logged - centre, centre


def masked_clr(counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Centred log-ratio over the measured entries only; unmeasured entries are 0.

    ``mask`` broadcasts to ``counts``: a per-cell ``(n, 1)`` mask (modality dropout) keeps or
    hides all of a cell's entries, and the centre is still the mean over its kept entries.
    """
    mask = torch.broadcast_to(mask, counts.shape).to(counts.dtype)
    logged = torch.log1p(counts) * mask
    centre = logged.sum(dim=-1, keepdim=True) / mask.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return (logged - centre) * mask


def normalized_to_counts(
    rna_values: torch.Tensor,
    protein_values: torch.Tensor,
    rna_log_library: torch.Tensor,
    protein_centre: torch.Tensor,
    target_sum: float = RNA_TARGET_SUM,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert the normalization to integer counts (for the Gaussian likelihood's samples)."""
    rna_counts = torch.expm1(rna_values.clamp(min=0.0)) * torch.exp(rna_log_library) / target_sum
    protein_counts = torch.expm1((protein_values + protein_centre).clamp(min=0.0))
    return rna_counts.round(), protein_counts.round()

"""Parameter counts of each part of a MODTT network, so that budgets can be compared."""

from __future__ import annotations

import pandas as pd
from torch import nn

# Parts of the network in the order data flows through it; a part missing from an architecture
# is left out of the table. The label prior is not listed: it is fitted by moment matching
# (buffers), not trained.
_PARTS = {
    "module encoders": ("module_encoder",),
    "token adapter": ("token_adapter",),
    "encoder coupling": ("encoder_coupling",),
    "encoder hidden": ("encoder_body",),
    "bottleneck": ("encoder_head", "decoder_input", "decoder_body"),
    "decoder coupling": ("decoder_coupling",),
    "module decoders": ("gene_decoder", "protein_decoder"),
    "likelihood": ("gene_likelihood", "protein_likelihood"),
}


def _trainable(part: nn.Module) -> int:
    return sum(p.numel() for p in part.parameters() if p.requires_grad)


def _has(module: nn.Module, name: str) -> bool:
    return getattr(module, name, None) is not None


def parameter_counts(module: nn.Module) -> pd.Series:
    """Trainable parameters per part of ``module`` and their ``total``."""
    counts = {
        part: sum(_trainable(getattr(module, name)) for name in names if _has(module, name))
        for part, names in _PARTS.items()
        if any(_has(module, name) for name in names)
    }
    if module.architecture == "flat":
        counts = {
            ("decoders" if part == "module decoders" else part): n for part, n in counts.items()
        }
    counts["total"] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return pd.Series(counts, name="parameters")

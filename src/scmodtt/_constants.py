"""Names shared across scmodtt: registry keys, layer names and the normalization constants."""

from typing import NamedTuple


class _ModttRegistryKeys(NamedTuple):
    MODULE_MEMBERSHIP: str = "module_membership"


MODTT_REGISTRY_KEYS = _ModttRegistryKeys()

#: Counts per cell that RNA is normalized to before ``log1p`` (the shared space of the metrics,
#: docs/user_guide/metrics.md).
RNA_TARGET_SUM = 1e4
#: Layer that holds RNA ``log1p`` of counts normalized to :data:`RNA_TARGET_SUM` per cell.
RNA_NORMALIZED_LAYER = "log1p_norm"
#: Layer that holds the per-cell centred log-ratio of ADT counts.
PROTEIN_NORMALIZED_LAYER = "clr"
#: Default ``.varm`` key of the module membership tables written by :func:`scmodtt.pp.find_modules`.
DEFAULT_MODULES_KEY = "modtt_modules"
#: Name given to the module that collects a modality's features that belong to no module.
RESIDUAL_MODULE_SUFFIX = "residual"

"""Metrics comparing synthetic with real CITE-seq cells (defined on the user guide's metrics page,
``docs/user_guide/metrics.md``).

Every metric compares cells in one shared space: RNA ``log1p`` of counts normalized to 10⁴ per
cell, ADT per-cell CLR (:func:`shared_space`). Metric functions accept MuData objects of raw
counts (``rna`` and ``prot`` modalities, counts in ``.X``, labels in ``mdata.obs``) or
:class:`SharedSpace` objects; :func:`evaluate` runs them all and returns a tidy table.
"""

from ._c2st import c2st_auc
from ._cell_types import SkippedCellTypesWarning
from ._classification import TSTRResult, tstr_f1
from ._correlation import CondRResult, InteractRResult, cond_r, interact_r
from ._distribution import energy_distance, knn_precision_recall, median_heuristic, mmd_rbf
from ._evaluate import evaluate
from ._fidelity import DISTRIBUTION_METRICS, DistributionFidelityResult, distribution_fidelity
from ._reference import ReferenceEmbedding, fit_reference_embedding
from ._space import SharedSpace, shared_space

__all__ = [
    "DISTRIBUTION_METRICS",
    "CondRResult",
    "DistributionFidelityResult",
    "InteractRResult",
    "ReferenceEmbedding",
    "SharedSpace",
    "SkippedCellTypesWarning",
    "TSTRResult",
    "c2st_auc",
    "cond_r",
    "distribution_fidelity",
    "energy_distance",
    "evaluate",
    "fit_reference_embedding",
    "interact_r",
    "knn_precision_recall",
    "median_heuristic",
    "mmd_rbf",
    "shared_space",
    "tstr_f1",
]

"""Plots of real against synthetic cells, of a MODTT model and of benchmark results.

Scanpy's conventions: ``ax=`` draws on given Axes (``None``: a new figure), ``show=`` shows the
figure (``None`` follows ``scanpy.settings.autoshow``), ``save=`` writes it (a file, or ``True``
for ``scanpy.settings.figdir``), and a figure that is not shown is returned as its Axes.
"""

from ._benchmark import budget_curves, metric_bars
from ._coherence import module_coherence
from ._correlations import pair_correlations
from ._embedding import synthetic_embedding
from ._history import training_history
from ._modules import module_heatmap

__all__ = [
    "budget_curves",
    "metric_bars",
    "module_coherence",
    "module_heatmap",
    "pair_correlations",
    "synthetic_embedding",
    "training_history",
]

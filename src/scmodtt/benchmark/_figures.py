"""The report's figure files: :mod:`scmodtt.pl`'s benchmark figures and a UMAP grid, as PNG.

The figures are drawn with interactive mode off and closed once written, so that writing a
report shows nothing and leaves no figure open in the caller's session.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import pl
from ..pl._benchmark import models_with_several_budgets
from ._summary import PROTOCOL_COLOURS, UNKNOWN_PROTOCOL_COLOUR, run_order
from ._zoo import module_method_models

logger = logging.getLogger(__name__)

#: Cells of each set (real, synthetic) drawn into a UMAP panel; keeps a panel to seconds.
UMAP_MAX_CELLS = 1500
UMAP_SEED = 0
FIGURE_DPI = 120
_REAL_COLOUR = "#a0a0a0"


def write_metric_bars(summary: pd.DataFrame, path: Path) -> Path:
    """:func:`scmodtt.pl.metric_bars` of one dataset's summary, written to ``path``."""
    with plt.ioff():
        axes = pl.metric_bars(summary, show=False)
    return _write(axes[0].figure, path)


def write_budget_curves(summary: pd.DataFrame, path: Path) -> bool:
    """:func:`scmodtt.pl.budget_curves` of one dataset's summary; whether it was written.

    Nothing is written when no model was run at several budgets (there would be no curve).
    """
    if models_with_several_budgets(summary).empty:
        return False
    with plt.ioff():
        axes = pl.budget_curves(summary, show=False)
    _write(axes[0].figure, path)
    return True


def _write(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=FIGURE_DPI)
    plt.close(figure)
    return path


def _synthetic_panels(folder: Path, dataset: str) -> pd.DataFrame:
    """``path, model, protocol`` of the saved synthetic cells of ``dataset``, in report order."""
    prefix = f"{dataset}__"
    rows = []
    for path in sorted(folder.glob(f"{prefix}*.npz")):
        model, _, protocol = path.stem[len(prefix) :].rpartition("__")
        if model and model != "real":
            rows.append({"path": path, "model": model, "protocol": protocol})
    panels = pd.DataFrame(rows, columns=["path", "model", "protocol"])
    # Saved names spell "modtt-tt:random" as "modtt-tt-random"; order them after their base.
    with_methods = "|".join(map(re.escape, module_method_models()))
    panels["model"] = panels["model"].str.replace(
        rf"^({with_methods})-(\w+)$", r"\1:\2", regex=True
    )
    return run_order(panels)


def _finite_cells(path: Path) -> np.ndarray:
    """The saved cells of ``path`` whose values are all finite (a diverged decoder's are not)."""
    with np.load(path, allow_pickle=False) as saved:
        values = saved["values"]
    return values[np.isfinite(values).all(axis=1)]


def plot_umap_grid(
    folder: Path, dataset: str, path: Path, max_cells: int = UMAP_MAX_CELLS
) -> str | None:
    """UMAP panels of real test cells (grey) against each saved set of synthetic cells.

    Each panel embeds its own concatenation of real and synthetic cells
    (:func:`scmodtt.pl.synthetic_embedding`), so panels are not on shared axes; what a panel
    shows is whether the synthetic cells cover the real cells' clusters.

    Parameters
    ----------
    folder
        ``synthetic/`` folder of a benchmark output (``<dataset>__<model>__<protocol>.npz`` and
        ``<dataset>__real__test.npz``, arrays ``values`` and ``labels``).
    dataset
        Dataset whose files are drawn.
    path
        PNG to write.
    max_cells
        Cells drawn from each set, with a seeded generator.

    Returns
    -------
    ``None`` when written, else why not (missing files, no usable panel).

    """
    real_path = folder / f"{dataset}__real__test.npz"
    if not folder.is_dir():
        return f"no folder {folder.name}/ with synthetic cells"
    if not real_path.exists():
        return f"no real test cells ({real_path.name}) to compare with"
    panels = _synthetic_panels(folder, dataset)
    if panels.empty:
        return "no synthetic cells were saved"
    real = _finite_cells(real_path)
    drawn, skipped = [], []
    for panel in panels.itertuples(index=False):
        synthetic = _finite_cells(panel.path)
        if synthetic.ndim != 2 or synthetic.shape[1] != real.shape[1] or len(synthetic) < 2:
            skipped.append(panel.path.name)
        else:
            drawn.append((panel, synthetic))
    if skipped:
        logger.warning("UMAP skipped %s: features differ from the real test cells.", skipped)
    if not drawn:
        return "no synthetic set has the real test cells' features"

    n_columns = min(4, len(drawn))
    n_rows = int(np.ceil(len(drawn) / n_columns))
    figure = Figure(figsize=(2.8 * n_columns, 2.8 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(n_rows, n_columns)).ravel()
    for ax, (panel, synthetic) in zip(axes, drawn, strict=False):
        colour = PROTOCOL_COLOURS.get(panel.protocol, UNKNOWN_PROTOCOL_COLOUR)
        pl.synthetic_embedding(
            real,
            synthetic,
            color="source",
            max_cells=max_cells,
            seed=UMAP_SEED,
            palette={"real": _REAL_COLOUR, "synthetic": colour},
            size=3,
            alpha=0.55,
            legend_loc=None,
            ax=ax,
            show=False,
        )
        ax.set(title=f"{panel.model}\n{panel.protocol}", xlabel="", ylabel="")
        ax.title.set_fontsize(9)
    for ax in axes[len(drawn) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"{dataset}: real test cells (grey) vs synthetic cells (colour = protocol), first seed",
        fontsize=10,
    )
    _write(figure, path)
    return None

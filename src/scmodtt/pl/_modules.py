"""Module embeddings by cell type: which modules tell the cell types apart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from mudata import MuData

from ..metrics._stats import grouped_mean
from ._figure import documents_show_save, finish, new_axes, panel_axes

#: Values of ``statistic`` and the colour-bar label of each.
STATISTICS = {
    "specificity": "‖type mean − mean‖ / within-type SD",
    "norm": "‖type mean‖",
}


@documents_show_save
def module_heatmap(
    model,
    adata: MuData | None = None,
    *,
    labels_key: str | None = None,
    statistic: str = "specificity",
    modules: int | Sequence[str] | None = None,
    min_cells: int = 1,
    cmap: str = "viridis",
    vmax: float | None = None,
    batch_size: int | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> Axes | None:
    """Heatmap of the mean module embedding of each cell type, one column per module.

    Each module's token (:meth:`scmodtt.MODTT.get_module_embeddings`, ``module_dim`` values a
    cell) is averaged over the cells of each type and drawn as one number:

    - ``"specificity"``: distance of the type's mean token from the mean over all drawn cells,
      in units of the module's pooled within-type standard deviation (per token dimension), so
      that modules of different scale compare; large where a module separates that type.
    - ``"norm"``: the length of the type's mean token.

    Parameters
    ----------
    model
        A trained :class:`~scmodtt.MODTT` of the modular architecture.
    adata
        Cells to embed (registered like the model's, e.g. held-out cells); ``None`` uses the
        model's own.
    labels_key
        Column of ``obs`` (of the MuData, or failing that of one of its modalities) with the cell
        types; ``None`` uses the model's ``labels_key``.
    statistic
        ``"specificity"`` or ``"norm"`` (see above).
    modules
        Modules to draw: ``None`` for all (in :attr:`~scmodtt.MODTT.module_names` order), a list
        of names, or a number ``k`` for each type's ``k`` highest modules.
    min_cells
        Fewest cells of a type for the type to be drawn.
    cmap, vmax
        Colour map and upper end of the colour scale (``None``: the largest value).
    batch_size
        Cells encoded at once.
    ax
        Axes to draw on; ``None`` draws a new figure.
    show
        {show}
    save
        {save}

    Returns
    -------
    The Axes unless the figure was shown; its image holds cell types × modules.

    Raises
    ------
    ValueError
        For the flat architecture, an unknown ``statistic`` or module, a missing or incomplete
        ``labels_key``, or no cell type with ``min_cells`` cells.

    Examples
    --------
    >>> import scmodtt
    >>> scmodtt.pl.module_heatmap(model)  # doctest: +SKIP
    >>> scmodtt.pl.module_heatmap(model, test_cells, modules=3)  # doctest: +SKIP

    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {list(STATISTICS)}, got {statistic!r}.")
    data = model.adata if adata is None else adata
    if labels_key is None:
        labels_key = model.adata_manager.registry["setup_args"].get("labels_key")
        if labels_key is None:
            raise ValueError(
                "The model was set up without labels_key; pass labels_key= naming the obs "
                "column with the cell types."
            )
    labels = _obs_column(data, labels_key)
    tokens = model.get_module_embeddings(adata, batch_size=batch_size)
    table = _module_statistic(tokens, labels, model.module_names, statistic, min_cells)
    table = table[_chosen_modules(table, modules)]

    n_types, n_modules = table.shape
    figsize = (max(4.0, 0.3 * n_modules + 3.0), max(2.5, 0.3 * n_types + 1.8))
    (panel,) = panel_axes(ax, 1, lambda: new_axes(figsize))
    image = panel.imshow(
        table.to_numpy(), aspect="auto", cmap=cmap, vmax=vmax, interpolation="nearest"
    )
    panel.set_xticks(range(n_modules), table.columns, rotation=90)
    panel.set_yticks(range(n_types), table.index)
    panel.grid(False)
    panel.figure.colorbar(image, ax=panel, label=STATISTICS[statistic], shrink=0.8)
    panel.set_title(f"Module embeddings by {labels_key}")
    return finish(panel, show, save, "module_heatmap", own_figure=ax is None)


def _module_statistic(
    tokens: np.ndarray,
    labels: pd.Series,
    module_names: Sequence[str],
    statistic: str = "specificity",
    min_cells: int = 1,
) -> pd.DataFrame:
    """Cell types × modules: one number per type's mean module token (see :func:`module_heatmap`).

    Parameters
    ----------
    tokens
        Cells × modules × token dimension.
    labels
        Cell type of each cell (categorical order kept, else sorted).
    module_names
        Names of the modules.
    statistic
        ``"specificity"`` or ``"norm"``.
    min_cells
        Fewest cells of a type for the type to be kept.

    """
    counts = labels.value_counts()
    categorical = isinstance(labels.dtype, pd.CategoricalDtype)
    ordered = labels.cat.categories if categorical else sorted(counts.index)
    kept = [t for t in ordered if counts[t] >= min_cells]
    if not kept:
        raise ValueError(
            f"No cell type has >= {min_cells} cells (largest: {counts.max()}); lower min_cells."
        )
    codes = pd.Categorical(labels, categories=kept).codes
    used = codes >= 0
    # Sums over many float32 tokens lose digits; the statistic is computed in float64.
    tokens, codes = tokens[used].astype(np.float64), codes[used].astype(np.int64)
    n_cells, n_modules, module_dim = tokens.shape
    means = grouped_mean(tokens.reshape(n_cells, -1), codes, len(kept))
    means = means.reshape(len(kept), n_modules, module_dim)
    if statistic == "norm":
        values = np.linalg.norm(means, axis=-1)
    else:
        within = ((tokens - means[codes]) ** 2).sum(axis=(0, 2)) / (n_cells * module_dim)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.linalg.norm(means - tokens.mean(axis=0), axis=-1) / np.sqrt(within)
    return pd.DataFrame(
        values, index=pd.Index(map(str, kept), name="cell_type"), columns=list(module_names)
    )


def _obs_column(data: MuData, key: str) -> pd.Series:
    """``data.obs[key]``, or the column of a modality's ``.obs``; complete (no missing value)."""
    tables = [data.obs, *(m.obs for m in getattr(data, "mod", {}).values())]
    column = next((table[key] for table in tables if key in table.columns), None)
    if column is None:
        raise ValueError(
            f"labels_key {key!r} is in neither .obs nor a modality's .obs (columns: "
            f"{sorted(map(str, data.obs.columns))}). Pass labels_key= naming the column with the "
            "cell types."
        )
    # A modality's .obs may hold its cells in another order than the MuData.
    column = column.reindex(data.obs_names)
    if column.isna().any():
        raise ValueError(
            f"{int(column.isna().sum())} cells have no {key!r} label; pass cells that all have "
            f"one, e.g. adata=mdata[mdata.obs[{key!r}].notna()].copy()."
        )
    return column


def _chosen_modules(table: pd.DataFrame, modules: int | Sequence[str] | None) -> list[str]:
    if modules is None:
        return list(table.columns)
    if isinstance(modules, int | np.integer):
        top = np.argsort(-table.to_numpy(), axis=1, kind="stable")[:, :modules]
        return list(dict.fromkeys(table.columns[top.ravel()]))
    unknown = [m for m in modules if m not in table.columns]
    if unknown:
        raise ValueError(
            f"Unknown module(s) {unknown}; the model's modules are model.module_names "
            f"(e.g. {list(table.columns[:3])})."
        )
    return list(modules)

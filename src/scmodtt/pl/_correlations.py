"""Per-cell-type gene–protein correlations, real against synthetic: the picture behind cond_r."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from mudata import MuData

from ..metrics import CondRResult, SharedSpace, cond_r
from ..pp import rna_protein_pairs
from ._figure import (
    RIGHT_MARGIN,
    add_legend,
    category_colours,
    documents_show_save,
    finish,
    new_axes,
    ordered_categories,
    panel_axes,
)


@documents_show_save
def pair_correlations(
    real: MuData | SharedSpace | None = None,
    synthetic: MuData | SharedSpace | None = None,
    pairs: Sequence[tuple[str, str]] | pd.DataFrame | None = None,
    *,
    result: CondRResult | None = None,
    labels_key: str = "cell_type",
    min_cells: int = 20,
    palette: Mapping[str, str] | None = None,
    size: float = 25.0,
    legend_loc: str | None = RIGHT_MARGIN,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    **kwargs,
) -> Axes | None:
    """Within-type gene–protein correlations in real (x) against synthetic (y) cells.

    One point per (cell type, RNA–protein pair): the Pearson correlation of the pair's gene and
    protein across the real cells of that type, and across the synthetic cells generated for it,
    coloured by cell type. :func:`scmodtt.metrics.cond_r` is the correlation of these points, so
    a generator that keeps each type's RNA–protein coupling puts them on the diagonal.

    Parameters
    ----------
    real, synthetic
        Real and synthetic cells as :func:`scmodtt.metrics.cond_r` takes them: MuData of raw
        counts (``rna`` and ``prot``) or :class:`~scmodtt.metrics.SharedSpace`.
    pairs
        ``(gene, protein)`` tuples or a DataFrame with columns ``gene`` and ``protein``;
        ``None`` uses the kept pairs of :func:`scmodtt.pp.rna_protein_pairs` of ``real`` (a
        MuData).
    result
        A :class:`~scmodtt.metrics.CondRResult` to draw instead of computing one (then leave
        ``real``, ``synthetic`` and ``pairs`` out).
    labels_key
        Cell-type column of ``obs`` (as in :func:`~scmodtt.metrics.cond_r`).
    min_cells
        Fewest cells of a type in each set for the type to be drawn.
    palette
        Colour per cell type, overriding scanpy's default palette.
    size
        Point size.
    legend_loc
        ``"right margin"``, a matplotlib legend location, or ``None`` for no legend.
    ax
        Axes to draw on; ``None`` draws a new figure.
    show
        {show}
    save
        {save}
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    The Axes unless the figure was shown.

    Raises
    ------
    ValueError
        Where :func:`~scmodtt.metrics.cond_r` does (e.g. a missing ``labels_key``, pair features
        that are not measured), if neither cells nor a result are given, or if ``pairs`` is left
        out for cells that are not a MuData.

    Examples
    --------
    >>> import scmodtt
    >>> synthetic = model.sample(n_per_label=200, seed=0)  # doctest: +SKIP
    >>> scmodtt.pl.pair_correlations(test_cells, synthetic)  # doctest: +SKIP
    >>> result = scmodtt.metrics.cond_r(test_cells, synthetic, pairs)  # doctest: +SKIP
    >>> scmodtt.pl.pair_correlations(result=result)  # doctest: +SKIP

    """
    result = _cond_r_result(real, synthetic, pairs, result, labels_key, min_cells)
    entries = result.entries
    (panel,) = panel_axes(ax, 1, lambda: new_axes((5.5, 4.2)))
    # Colours over every label of the cells, in their categories' order, as synthetic_embedding
    # gives them: a type left out for too few cells does not shift the other types' colours.
    label_columns = [
        cells.obs[labels_key]
        for cells in (real, synthetic)
        if labels_key in getattr(getattr(cells, "obs", None), "columns", ())
    ]
    labels = [str(label) for column in label_columns for label in column.dropna().unique()]
    drawn = [str(cell_type) for cell_type in result.r_real.index]
    every = category_colours(ordered_categories(label_columns, [*labels, *drawn]), palette)
    colours = {cell_type: colour for cell_type, colour in every.items() if cell_type in drawn}
    for cell_type, group in entries.groupby("cell_type", sort=False):
        panel.scatter(
            group["real"], group["synthetic"], s=size, color=colours[str(cell_type)], **kwargs
        )
    if len(entries):
        values = entries[["real", "synthetic"]].to_numpy()
        limits = [values.min() - 0.05, values.max() + 0.05]
        panel.plot(limits, limits, color="black", linewidth=0.8, linestyle="--", zorder=0)
    add_legend(panel, colours, legend_loc, title=labels_key)
    value = "NaN" if np.isnan(result.value) else f"{result.value:.2f}"
    panel.set(
        xlabel="r(gene, protein) in real cells",
        ylabel="r(gene, protein) in synthetic cells",
        title=f"cond_r = {value} ({result.n_entries} type × pair entries)",
    )
    return finish(panel, show, save, "pair_correlations", own_figure=ax is None)


def _cond_r_result(real, synthetic, pairs, result, labels_key, min_cells) -> CondRResult:
    if result is not None:
        if any(given is not None for given in (real, synthetic, pairs)):
            raise ValueError(
                "Pass either `result` (a CondRResult) or the cells (`real`, `synthetic`, "
                "`pairs`), not both."
            )
        return result
    if real is None or synthetic is None:
        raise ValueError(
            "Pass the real and synthetic cells, or `result=scmodtt.metrics.cond_r(...)`."
        )
    if pairs is None:
        if not isinstance(real, MuData):
            raise ValueError(
                f"pairs=None reads the pairs from a MuData of real cells, got "
                f"{type(real).__name__}; pass pairs=..., e.g. from scmodtt.pp.rna_protein_pairs."
            )
        found = rna_protein_pairs(real)
        pairs = found.loc[found["kept"], ["gene", "protein"]]
    return cond_r(real, synthetic, pairs, labels_key=labels_key, min_cells=min_cells)

"""What every plotting function shares: scanpy's ``ax=`` / ``show=`` / ``save=`` conventions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

#: Values of ``legend_loc`` that place the legend outside the axes, on their right.
RIGHT_MARGIN = "right margin"
#: What ``show`` and ``save`` do, in every plot's docstring (``{name}``: the plot's name).
_SHOW_SAVE_DOCS = {
    "{show}": "Show the figure; ``None`` follows ``scanpy.settings.autoshow`` when the plot makes "
    "its own figure, and does not show a figure whose Axes were passed as ``ax``.",
    "{save}": "File to write the figure to (format from its suffix), or ``True`` for "
    "``<scanpy.settings.figdir>/{name}.<scanpy.settings.file_format_figs>``.",
}


def documents_show_save(function):
    """Describe ``show`` and ``save`` where ``function``'s docstring says ``{show}``, ``{save}``.

    Every plot takes them, so they are described once, as scanpy shares its descriptions.
    """
    for placeholder, text in _SHOW_SAVE_DOCS.items():
        function.__doc__ = function.__doc__.replace(
            placeholder, text.format(name=function.__name__)
        )
    return function


def panel_axes(ax: Axes | Sequence[Axes] | None, n_panels: int, new_figure) -> list[Axes]:
    """The Axes to draw ``n_panels`` panels on: the caller's, or those of a new figure.

    Parameters
    ----------
    ax
        ``None``, one Axes (one panel) or one Axes per panel.
    n_panels
        Panels the plot draws.
    new_figure
        Called without arguments when ``ax`` is ``None``; returns the Axes of a new figure (at
        least ``n_panels``; the ones beyond are hidden).

    Raises
    ------
    ValueError
        If ``ax`` does not hold one Axes per panel.

    """
    if ax is None:
        axes = list(np.ravel(new_figure()))
        for extra in axes[n_panels:]:
            extra.set_visible(False)
        return axes[:n_panels]
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
    if len(axes) != n_panels or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(
            f"This plot draws {n_panels} panel(s) but got {len(axes)} Axes in `ax`; pass one "
            f"Axes per panel (e.g. `ax=plt.subplots(1, {n_panels})[1]`) or `ax=None` for a new "
            "figure."
        )
    return axes


def new_axes(figsize: tuple[float, float], n_rows: int = 1, n_columns: int = 1, **kwargs):
    """Axes of a new pyplot figure with constrained layout (``kwargs`` go to ``subplots``)."""
    figure = plt.figure(figsize=figsize, layout="constrained")
    return figure.subplots(n_rows, n_columns, squeeze=False, **kwargs)


def ordered_categories(columns: Sequence[pd.Series], present: Sequence[str]) -> list[str]:
    """``present`` labels in the categorical order of ``columns`` (first first), others sorted.

    Scanpy colours a categorical column in the order of its categories; following that order
    gives a label the same colour here as in ``sc.pl.umap``, whatever set it came from.
    """
    ordered = [
        str(category)
        for column in columns
        if isinstance(column.dtype, pd.CategoricalDtype)
        for category in column.cat.categories
    ]
    present = set(map(str, present))
    ordered = [c for c in dict.fromkeys(ordered) if c in present]
    return ordered + sorted(present - set(ordered))


def category_colours(categories: Sequence[str], palette: Mapping[str, str] | None = None):
    """A colour per category: ``palette``'s, else scanpy's default palette for that many."""
    from scanpy.plotting import palettes

    n = len(categories)
    default = (
        palettes.default_20 if n <= 20 else palettes.default_28 if n <= 28 else palettes.default_102
    )
    colours = {name: default[i % len(default)] for i, name in enumerate(categories)}
    return {**colours, **{k: v for k, v in (palette or {}).items() if k in colours}}


def add_legend(ax: Axes, colours: Mapping[str, str], legend_loc: str | None, title=None) -> None:
    """A legend of coloured dots, one per category; ``legend_loc=None`` draws none."""
    if legend_loc is None or legend_loc == "none":
        return
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=name)
        for name, colour in colours.items()
    ]
    where = (
        {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)}
        if legend_loc == RIGHT_MARGIN
        else {"loc": legend_loc}
    )
    ax.legend(handles=handles, frameon=False, fontsize="small", title=title, **where)


def finish(
    axes: Axes | Sequence[Axes],
    show: bool | None,
    save: bool | str | Path | None,
    name: str,
    own_figure: bool,
):
    """Save and show the figure of ``axes`` as scanpy does; ``axes`` unless it was shown.

    Parameters
    ----------
    axes
        What the plotting function returns when the figure is not shown.
    show
        Show the figure (``plt.show()``); ``None`` follows ``scanpy.settings.autoshow`` for a
        figure of the plot's own and does not show a figure the caller passed Axes of (it may
        have more panels to draw).
    save
        A file to write (format from its suffix, else ``scanpy.settings.file_format_figs``), or
        ``True`` for ``<scanpy.settings.figdir>/<name>.<format>``. Written at
        ``rcParams["savefig.dpi"]`` (``scanpy.set_figure_params(dpi_save=...)``).
    name
        File name stem for ``save=True``.
    own_figure
        Whether the plot made the figure (``ax=None``).

    """
    import scanpy as sc

    figure = (axes if isinstance(axes, Axes) else np.ravel(axes)[0]).figure
    if save:
        path = Path(sc.settings.figdir) / name if save is True else Path(save)
        if not path.suffix:
            path = path.with_suffix(f".{sc.settings.file_format_figs}")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, bbox_inches="tight")
    if show is None:
        show = sc.settings.autoshow and own_figure
    if not show:
        return axes
    plt.show()
    if save:
        plt.close(figure)
    return None

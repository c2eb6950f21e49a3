"""Module coherence against a random baseline: do a module's features vary together?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from ._figure import documents_show_save, finish, new_axes, panel_axes

#: Columns of :func:`scmodtt.pp.module_report` that the plot reads.
REPORT_COLUMNS = ("modality", "module", "size", "mean_within_r", "random_mean_within_r")
MODULE_COLOUR = "#d62728"
BASELINE_COLOUR = "#a0a0a0"
#: What a module holds, by modality, for the axis label and the panel title.
_FEATURES = {"rna": ("genes", "gene"), "prot": ("ADTs", "protein")}
_LOG_TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@documents_show_save
def module_coherence(
    report: pd.DataFrame | Mapping[str, pd.DataFrame],
    modality: str | None = "rna",
    *,
    residual: bool = False,
    logx: bool = True,
    size: float = 12.0,
    legend_loc: str | None = "best",
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    **kwargs,
) -> Axes | list[Axes] | None:
    """Each module's mean within-module correlation against its size, over a random baseline.

    One point per module (red) at the mean Pearson correlation between its features, and one
    (grey) at the same statistic for size-matched random groupings of the same features: modules
    above their baseline group features that vary together, which is what a module's encoder can
    exploit. Draws the output of :func:`scmodtt.pp.module_report`.

    Parameters
    ----------
    report
        A table of :func:`scmodtt.pp.module_report`, or a mapping of names to such tables (e.g.
        one per module set built with ``find_modules(key_added=...)``): one panel each, titled
        by its name, sharing the y axis.
    modality
        Modality whose modules are drawn (a value of ``report["modality"]``); ``None`` draws
        every modality's.
    residual
        Draw residual modules (names ending in ``_residual``: features in no gene set). Their
        random baseline is themselves, so they are left out by default.
    logx
        Logarithmic x axis (module sizes span orders of magnitude).
    size
        Point size.
    legend_loc
        A matplotlib legend location for the first panel, or ``None`` for no legend.
    ax
        Axes to draw on, one per report; ``None`` draws a new figure.
    show
        {show}
    save
        {save}
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` (e.g. ``alpha``).

    Returns
    -------
    The Axes (a list, one per report, when ``report`` is a mapping) unless the figure was shown.

    Raises
    ------
    ValueError
        If a report lacks a column of :func:`scmodtt.pp.module_report`, has no modules of
        ``modality`` (the message lists the modalities it has), or the mapping is empty.

    Examples
    --------
    >>> import scmodtt
    >>> scmodtt.pp.find_modules(mdata, cells=train_cells)  # doctest: +SKIP
    >>> report = scmodtt.pp.module_report(mdata, cells=test_cells)  # doctest: +SKIP
    >>> scmodtt.pl.module_coherence(report)  # doctest: +SKIP
    >>> scmodtt.pl.module_coherence({"ward": report, "random": random_report})  # doctest: +SKIP

    """
    single = isinstance(report, pd.DataFrame)
    reports = {"": report} if single else dict(report)
    if not reports:
        raise ValueError("`report` is an empty mapping; pass at least one module_report table.")
    tables = {
        name: _modules_drawn(table, name, modality, residual) for name, table in reports.items()
    }

    n_panels = len(tables)
    axes = panel_axes(
        ax, n_panels, lambda: new_axes((3.7 * n_panels, 3.2), 1, n_panels, sharey=True)
    )
    plural, singular = _FEATURES.get(modality, ("features", ""))
    for index, (panel, (name, table)) in enumerate(zip(axes, tables.items(), strict=True)):
        # Points above scanpy's grid lines, which would make points on them look hollow.
        style = {"s": size, "linewidths": 0, "zorder": 3, **kwargs}
        panel.scatter(
            table["size"],
            table["random_mean_within_r"],
            color=BASELINE_COLOUR,
            label="random baseline",
            **style,
        )
        panel.scatter(
            table["size"], table["mean_within_r"], color=MODULE_COLOUR, label="module", **style
        )
        if logx:
            _log_axis(panel, table["size"])
        title = " ".join(part for part in (name, singular, "modules") if part)
        panel.set(xlabel=f"{plural} in module", title=title)
        if index == 0:
            panel.set_ylabel("mean within-module r")
            if legend_loc is not None and legend_loc != "none":
                panel.legend(loc=legend_loc, frameon=False, fontsize="small")
    return finish(
        axes[0] if single else axes, show, save, "module_coherence", own_figure=ax is None
    )


def _modules_drawn(
    table: pd.DataFrame, name: str, modality: str | None, residual: bool
) -> pd.DataFrame:
    """The rows of ``table`` to draw: its modules of ``modality``, both statistics defined."""
    which = f"report {name!r}" if name else "report"
    missing = [column for column in REPORT_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"{which} lacks column(s) {missing} (it has {list(map(str, table.columns))}); pass "
            "the table of scmodtt.pp.module_report."
        )
    if modality is not None:
        present = sorted(map(str, table["modality"].unique()))
        if modality not in present:
            raise ValueError(
                f"{which} has no modules of modality {modality!r}; it has {present}. Pass "
                "modality= one of them, or None for all."
            )
        table = table[table["modality"] == modality]
    if not residual:
        table = table[~table["module"].astype(str).str.endswith("_residual")]
    # A module of fewer than two varying features has no correlation to draw.
    return table.dropna(subset=["mean_within_r", "random_mean_within_r"])


def _log_axis(panel: Axes, sizes: pd.Series) -> None:
    """A log x axis labelled with plain numbers (1, 2, 5, 10, ...) within the sizes' range."""
    panel.set_xscale("log")
    if not len(sizes):
        return
    panel.autoscale_view()
    low, high = panel.get_xlim()
    # Ticks outside the limits would widen them (set_xticks expands the view to its ticks).
    ticks = [tick for tick in _LOG_TICKS if low <= tick <= high]
    if len(ticks) < 2:  # a narrow range: matplotlib's own log ticks label it better
        return
    panel.set_xticks(ticks, [str(tick) for tick in ticks])
    panel.xaxis.set_minor_formatter(NullFormatter())
    panel.set_xlim(low, high)

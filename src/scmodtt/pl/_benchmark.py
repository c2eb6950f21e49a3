"""Figures of benchmark results: metric bars per run, and metrics against parameter count.

Both take the tidy results of :func:`scmodtt.benchmark.run` (``results.csv``) of one dataset, or
their summary over seeds, and list models and protocols in the order and colours of the
benchmark report. They import :mod:`scmodtt.benchmark` (every baseline model) only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._figure import documents_show_save, finish, new_axes, panel_axes

#: Panels of :func:`metric_bars` by default.
BAR_METRICS = ("cond_r", "interact_r", "tstr_f1", "c2st_auc")
#: Panels of :func:`budget_curves` by default.
CURVE_METRICS = ("cond_r", "tstr_f1")
_PROTOCOL_LINE_STYLES = {"native": "-", "latent_gaussian": "--", "latent_flow": "-."}


@documents_show_save
def metric_bars(
    results: pd.DataFrame,
    metrics: Sequence[str] = BAR_METRICS,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> list[Axes] | None:
    """Bars of mean ± std over seeds per model and budget, coloured by protocol.

    A model's protocols stand side by side at each of its budgets; the oracle (resampled real
    cells) is a dashed line with a ± std band, and TRTR F1 (a classifier trained on real cells)
    a dotted line in the ``tstr_f1`` panel, as its ceiling. The figure of the benchmark report.

    Parameters
    ----------
    results
        Tidy results of :func:`scmodtt.benchmark.run` of one dataset (columns ``dataset, model,
        protocol, seed, budget, n_params, metric, value``), or their summary over seeds (``mean``,
        ``std`` and ``n_seeds`` instead of ``seed`` and ``value``).
    metrics
        One panel per metric, two panels a row.
    ax
        One Axes per metric to draw on (the legend and title go to their figure); ``None`` draws
        a new figure.
    show
        {show}
    save
        {save}

    Returns
    -------
    The Axes, one per metric, unless the figure was shown.

    Raises
    ------
    ValueError
        If ``results`` holds several datasets or no metric rows.

    Examples
    --------
    >>> import pandas as pd
    >>> import scmodtt
    >>> results = pd.read_csv("results/results.csv", dtype={"budget": str})  # doctest: +SKIP
    >>> scmodtt.pl.metric_bars(results, metrics=["cond_r", "tstr_f1"])  # doctest: +SKIP

    """
    from ..benchmark._stats import RUN_KEYS
    from ..benchmark._summary import (
        PROTOCOL_COLOURS,
        PROTOCOL_ORDER,
        UNKNOWN_PROTOCOL_COLOUR,
        run_order,
    )

    summary, dataset = _one_dataset_summary(results)
    generators = summary[summary["model"] != "oracle"]
    runs = run_order(generators[RUN_KEYS].drop_duplicates(), budget_first=True)
    # One slot per (model, budget) group, its protocols side by side, a gap between groups.
    runs = runs.assign(
        group=runs["model"] + " " + runs["budget"].where(runs["budget"] != "default", "")
    )
    group_index = pd.Series(pd.factorize(runs["group"])[0], index=runs.index)
    runs["x"] = np.arange(len(runs)) + 0.6 * group_index
    centres = runs.groupby("group", sort=False)["x"].mean()

    n_rows = int(np.ceil(len(metrics) / 2))
    width = max(8.0, 0.5 * len(runs) + 3.0)
    axes = panel_axes(
        ax, len(metrics), lambda: new_axes((width, 3.75 * n_rows), n_rows, 2, sharex=True)
    )
    oracle = summary[summary["model"] == "oracle"].set_index("metric")
    has_trtr = "trtr_f1" in set(summary["metric"])
    for panel, metric in zip(axes, metrics, strict=True):
        values = runs.merge(summary[summary["metric"] == metric], on=RUN_KEYS, how="left")
        panel.bar(
            values["x"],
            values["mean"],
            yerr=values["std"].fillna(0),
            color=values["protocol"].map(PROTOCOL_COLOURS).fillna(UNKNOWN_PROTOCOL_COLOUR),
            width=0.8,
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
        if metric in oracle.index:
            mean, std = oracle.loc[metric, ["mean", "std"]].astype(float)
            panel.axhline(mean, color="black", linestyle="--", linewidth=1)
            if np.isfinite(std):
                panel.axhspan(mean - std, mean + std, color="black", alpha=0.08, linewidth=0)
        if metric == "tstr_f1" and has_trtr:
            trtr = summary.loc[summary["metric"] == "trtr_f1", "mean"].mean()
            panel.axhline(trtr, color="black", linestyle=":", linewidth=1)
        panel.set_title(_panel_title(metric), fontsize=10)
        panel.set_ylabel(metric)
        panel.grid(axis="y", alpha=0.3)
        panel.set_xticks(
            centres.to_numpy(),
            [g.strip() for g in centres.index],
            rotation=30,
            ha="right",
            rotation_mode="anchor",
        )
        panel.tick_params(axis="x", labelsize=8)
    for panel in axes[-2:]:
        panel.tick_params(axis="x", labelbottom=True)

    handles = [
        Patch(color=PROTOCOL_COLOURS.get(p, UNKNOWN_PROTOCOL_COLOUR), label=p)
        for p in PROTOCOL_ORDER
        if p in set(runs["protocol"])
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="oracle (± std band)"))
    if "tstr_f1" in metrics and has_trtr:
        handles.append(Line2D([], [], color="black", linestyle=":", label="TRTR F1 (ceiling)"))
    figure = axes[0].figure
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    seeds = int(summary["n_seeds"].max())
    figure.suptitle(f"{dataset}: mean ± std over {seeds} seeds; bar colour = generation protocol")
    return finish(axes, show, save, "metric_bars", own_figure=ax is None)


@documents_show_save
def budget_curves(
    results: pd.DataFrame,
    metrics: Sequence[str] = CURVE_METRICS,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> list[Axes] | None:
    """Metrics against trained parameter count (log x) per model and protocol, mean ± std.

    Models run at two or more parameter budgets are lines (one per protocol, line style =
    protocol); trained models run at one size (e.g. scVI, totalVI) are squares; the oracle is a
    dotted horizontal line. The figure of the benchmark report.

    Parameters
    ----------
    results
        As in :func:`metric_bars`.
    metrics
        One panel per metric, side by side.
    ax
        As in :func:`metric_bars`.
    show
        {show}
    save
        {save}

    Returns
    -------
    The Axes, one per metric, unless the figure was shown.

    Raises
    ------
    ValueError
        If ``results`` holds several datasets or no trained model.

    Examples
    --------
    >>> scmodtt.pl.budget_curves(results, metrics=["cond_r"])  # doctest: +SKIP

    """
    from ..benchmark._summary import run_key, run_order

    summary, dataset = _one_dataset_summary(results)
    trained = summary[summary["n_params"] > 0]
    if trained.empty:
        raise ValueError(
            "No trained model in the results (all have n_params == 0): nothing to draw against "
            "parameter count. Plot training-free generators with metric_bars."
        )
    curved = models_with_several_budgets(trained)
    ordered_models = run_order(trained.drop_duplicates("model"))["model"].tolist()
    colours = {model: f"C{i % 10}" for i, model in enumerate(ordered_models)}
    n_panels = len(metrics)
    axes = panel_axes(ax, n_panels, lambda: new_axes((5.0 * n_panels, 4.5), 1, n_panels))
    for panel, metric in zip(axes, metrics, strict=True):
        rows = trained[trained["metric"] == metric].sort_values("n_params", kind="stable")
        lines = rows.groupby(["model", "protocol"], sort=False)
        for (model, protocol), line in sorted(lines, key=lambda item: run_key(*item[0])):
            single = model not in curved
            panel.errorbar(
                line["n_params"],
                line["mean"],
                yerr=line["std"].fillna(0),
                color=colours[model],
                linestyle="none" if single else _PROTOCOL_LINE_STYLES.get(protocol, ":"),
                marker="s" if single else "o",
                markersize=5,
                capsize=3,
                label=f"{model} ({protocol})",
            )
        oracle = summary[(summary["model"] == "oracle") & (summary["metric"] == metric)]
        if not oracle.empty:
            panel.axhline(oracle["mean"].iloc[0], color="black", linestyle=":", label="oracle")
        panel.set_xscale("log")
        panel.set_xlabel("trained parameters")
        panel.set_ylabel(metric)
        panel.set_title(_panel_title(metric), fontsize=10)
        panel.grid(alpha=0.3, which="both")
    figure = axes[0].figure
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", fontsize=8)
    figure.suptitle(f"{dataset}: metric vs parameter count (mean ± std over seeds)")
    return finish(axes, show, save, "budget_curves", own_figure=ax is None)


def models_with_several_budgets(summary: pd.DataFrame) -> pd.Index:
    """Trained models of ``summary`` run at two or more parameter budgets (curves, not points)."""
    trained = summary[summary["n_params"] > 0]
    n_budgets = trained.groupby("model")["budget"].nunique()
    return n_budgets.index[n_budgets >= 2]


def _one_dataset_summary(results: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The summary over seeds of ``results`` (summarized here if tidy) and its one dataset."""
    from ..benchmark._summary import summarize

    if "mean" not in results.columns:
        missing = {"seed", "value"} - set(results.columns)
        if missing:
            raise ValueError(
                f"results lack column(s) {sorted(missing)}: pass the tidy results.csv of "
                "scmodtt.benchmark.run, or their summary over seeds (mean, std, n_seeds)."
            )
        results = summarize(results)
    if results.empty:
        raise ValueError("No metric rows to plot (the results hold none of the table's metrics).")
    datasets = results["dataset"].astype(str).unique()
    if len(datasets) != 1:
        raise ValueError(
            f"results hold {len(datasets)} datasets ({', '.join(datasets)}); plot one at a time, "
            f"e.g. results[results['dataset'] == {datasets[0]!r}]."
        )
    return results, datasets[0]


def _panel_title(metric: str) -> str:
    from ..benchmark._stats import HIGHER_IS_BETTER, IDEAL_DISTANCE_METRICS

    if metric in IDEAL_DISTANCE_METRICS:
        return f"{metric} ({IDEAL_DISTANCE_METRICS[metric]:g} is ideal)"
    return f"{metric} ({'higher' if HIGHER_IS_BETTER.get(metric, True) else 'lower'} is better)"

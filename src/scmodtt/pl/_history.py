"""Training curves from a model's history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes

from ._figure import documents_show_save, finish, new_axes, panel_axes

#: Curves drawn when ``keys`` is ``None`` (those the history has).
DEFAULT_KEYS = ("elbo_train", "elbo_validation")


@documents_show_save
def training_history(
    model,
    keys: str | Sequence[str] | None = None,
    *,
    logy: bool = False,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> Axes | None:
    """Training and validation curves, one line per history key, against the epoch.

    Parameters
    ----------
    model
        A trained scvi-tools model (e.g. :class:`~scmodtt.MODTT`, or totalVI to compare), or
        its ``history``: a mapping of key to a DataFrame indexed by epoch.
    keys
        History keys to draw (``list(model.history)`` names them); ``None`` draws
        ``elbo_train`` and ``elbo_validation``.
    logy
        Logarithmic y axis.
    ax
        Axes to draw on; ``None`` draws a new figure.
    show
        {show}
    save
        {save}

    Returns
    -------
    The Axes unless the figure was shown.

    Raises
    ------
    ValueError
        If the model has no history (not trained) or lacks a requested key.

    Examples
    --------
    >>> import scmodtt
    >>> model.train(max_epochs=50)  # doctest: +SKIP
    >>> scmodtt.pl.training_history(model)  # doctest: +SKIP
    >>> losses = ["reconstruction_loss_train", "reconstruction_loss_validation"]
    >>> scmodtt.pl.training_history(model, losses, logy=True)  # doctest: +SKIP

    """
    history: Mapping[str, pd.DataFrame] = (
        model if isinstance(model, Mapping) else getattr(model, "history", None) or {}
    )
    if not history:
        raise ValueError("The model has no training history: train it first (model.train()).")
    if keys is None:
        keys = [key for key in DEFAULT_KEYS if key in history] or list(history)
    keys = [keys] if isinstance(keys, str) else list(keys)
    missing = [key for key in keys if key not in history]
    if missing:
        raise ValueError(f"History has no key(s) {missing}; it has {sorted(history)}.")

    (panel,) = panel_axes(ax, 1, lambda: new_axes((4.5, 3.0)))
    for key in keys:
        # scvi-tools keeps the values as objects; plot them as numbers.
        curve = pd.to_numeric(pd.DataFrame(history[key]).iloc[:, 0], errors="coerce").dropna()
        panel.plot(curve.index.to_numpy(), curve.to_numpy(), marker="o", markersize=3, label=key)
    elbo_only = all(key.startswith("elbo") for key in keys)
    panel.set(
        xlabel="epoch",
        ylabel="negative ELBO" if elbo_only else keys[0] if len(keys) == 1 else "value",
        yscale="log" if logy else "linear",
    )
    panel.legend(frameon=False, fontsize="small")
    return finish(panel, show, save, "training_history", own_figure=ax is None)

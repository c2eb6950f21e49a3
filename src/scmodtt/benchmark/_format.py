"""Numbers and tables as the report prints them (Markdown)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._stats import COUNTERPARTS, HIGHER_IS_BETTER, IDEAL_DISTANCE_METRICS


# ---------------------------------------------------------------------- numbers
def metric_decimals(frame: pd.DataFrame, column: str = "mean") -> dict[str, int]:
    """Decimals per metric giving ~3 significant digits at the metric's typical magnitude.

    One precision per metric keeps a column aligned and makes a std or an interval as precise as
    the mean beside it; correlations and F1 get 3 decimals, a small MMD² as many as it needs.
    """
    scale = frame.groupby("metric")[column].apply(lambda v: np.nanmedian(np.abs(v)))
    with np.errstate(divide="ignore"):
        needed = np.ceil(-np.log10(scale.where(scale > 0))) + 2
    return needed.clip(lower=3, upper=8).fillna(3).astype(int).to_dict()


def number(value: float, decimals: int = 3, signed: bool = False) -> str:
    """``value`` with ``decimals`` decimals (``–`` when not finite)."""
    if not np.isfinite(value):
        return "–"
    return f"{value:{'+' if signed else ''}.{decimals}f}"


def quantity(value: float) -> str:
    """Seconds, MiB, cells/s: no more digits than the measurement noise supports."""
    if not np.isfinite(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def count(n_params: float) -> str:
    """A parameter count as ``1.2M``, ``60k`` or ``512``."""
    if not np.isfinite(n_params):
        return "–"
    if n_params >= 1e6:
        return f"{n_params / 1e6:.3g}M"
    if n_params >= 1e3:
        return f"{n_params / 1e3:.3g}k"
    return f"{n_params:.0f}"


# ---------------------------------------------------------------------- table pieces
def metric_header(metric: str) -> str:
    """Column header of a metric with its ideal value or better direction."""
    if metric == "trtr_f1":
        return "trtr_f1 (ceiling)"
    if metric in IDEAL_DISTANCE_METRICS:
        return f"{metric} (→{IDEAL_DISTANCE_METRICS[metric]:g})"
    return f"{metric} {'↑' if HIGHER_IS_BETTER.get(metric, True) else '↓'}"


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """Lines of a Markdown table of ``frame`` (``|`` in cells escaped)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [header, rule, *rows]


def wide(cells: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys``, one column of formatted ``cell`` text per metric."""
    return cells.pivot(index=keys, columns="metric", values="cell").reset_index()


def metric_columns(table: pd.DataFrame, metrics: Sequence[str]) -> dict[str, pd.Series]:
    """The formatted columns of ``metrics`` that ``table`` has, under their headers."""
    return {metric_header(m): table[m].fillna("–") for m in metrics if m in table}


def described_run(frame: pd.DataFrame, prefix: str = "") -> pd.Series:
    """``model (protocol, budget)``; ``prefix="baseline"`` reads the baseline's columns."""
    model, protocol, budget = (
        (prefix, f"{prefix}_protocol", f"{prefix}_budget")
        if prefix
        else ("model", "protocol", "budget")
    )
    return frame[model] + " (" + frame[protocol] + ", " + frame[budget] + ")"


def counterparts_text(whose: str = "the baseline's") -> str:
    """``native against the baseline's latent_flow`` for every protocol with a counterpart."""
    return ", ".join(f"{name} against {whose} {other}" for name, other in COUNTERPARTS.items())


def safe_name(text: str) -> str:
    """``text`` as a file name stem."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)

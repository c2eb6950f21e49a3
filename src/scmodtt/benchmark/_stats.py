"""Paired, per-seed comparisons of benchmark results.

With ~10 matched RNA–protein pairs and ~1,000 test cells the metrics move by 0.05–0.2 between
splits (see the metrics page of the user guide, ``docs/user_guide/metrics.md``), far more than
most differences between models. Every model of a benchmark sees the same split and seed, so
differences are taken *within* a seed (model − baseline) and a claim is made only when the 95%
t-interval of the mean difference excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ._protocols import PROTOCOLS
from ._zoo import module_method_models

#: Metrics a report leads with, in the order it shows them (``trtr_f1`` is a ceiling, not a score).
HEADLINE_METRICS = (
    "cond_r",
    "interact_r",
    "tstr_f1",
    "c2st_auc",
    "mmd2_rbf",
    "energy_distance",
    "knn_precision",
    "knn_recall",
)

#: Whether a larger compared value is better, per metric. Run measurements are included so that
#: speed can be compared the same way (``epochs`` has no better direction and is left out).
HIGHER_IS_BETTER = {
    "cond_r": True,
    "interact_r": True,
    "tstr_f1": True,
    "trtr_f1": True,
    "knn_precision": True,
    "knn_recall": True,
    "mmd2_rbf": False,
    "energy_distance": False,
    "c2st_auc": False,  # compared as |AUC − 0.5|, see IDEAL_DISTANCE_METRICS
    "train_seconds": False,
    "median_epoch_seconds": False,
    "peak_memory_increase_mib": False,
    "sample_cells_per_s": True,
}

#: Metrics compared by their distance from an ideal value in the middle of their range. A C2ST AUC
#: of 0.5 means indistinguishable; 0.3 is as far from it as 0.7 (the classifier separates the sets
#: and merely flips the sign), so the raw AUC has no better direction but |AUC − 0.5| does.
IDEAL_DISTANCE_METRICS = {"c2st_auc": 0.5}

VERDICT_BETTER = "better"
VERDICT_WORSE = "worse"
VERDICT_NONE = "no detectable difference"

#: Models whose module structure and coupling the paired comparisons are about.
MODTT_ARCHITECTURES = tuple(module_method_models())
#: Baseline protocol a run is compared with when the baseline lacks the run's own protocol.
COUNTERPARTS = {name: p.counterpart for name, p in PROTOCOLS.items() if p.counterpart}

RUN_KEYS = ["dataset", "model", "protocol", "budget"]
_BASELINE_KEYS = ["baseline", "baseline_protocol", "baseline_budget"]

#: Columns of :func:`paired_differences`, in order.
PAIRED_COLUMNS = [
    "dataset",
    "comparison",
    "model",
    "protocol",
    "budget",
    "baseline",
    "baseline_protocol",
    "baseline_budget",
    "metric",
    "compared_on",
    "higher_is_better",
    "n_seeds",
    "model_mean",
    "baseline_mean",
    "mean_difference",
    "ci_low",
    "ci_high",
    "verdict",
    "n_params",
    "baseline_n_params",
]


def compared_values(metric: pd.Series, value: pd.Series) -> pd.Series:
    """The value each metric is compared on: the raw value, or its distance from an ideal value.

    Parameters
    ----------
    metric
        Metric name of each row.
    value
        Raw metric value of each row.

    Returns
    -------
    ``|value − ideal|`` for metrics in :data:`IDEAL_DISTANCE_METRICS` (``c2st_auc``), else
    ``value``.

    """
    ideal = metric.map(IDEAL_DISTANCE_METRICS)
    return value.where(ideal.isna(), (value - ideal).abs())


def compared_on(metric: str) -> str:
    """How :func:`compared_values` reads ``metric``: ``"value"`` or e.g. ``"|value − 0.5|"``."""
    ideal = IDEAL_DISTANCE_METRICS.get(metric)
    return "value" if ideal is None else f"|value − {ideal:g}|"


def t_interval(
    mean: pd.Series | np.ndarray,
    std: pd.Series | np.ndarray,
    n: pd.Series | np.ndarray,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Student-t confidence interval of a mean from its sample standard deviation.

    Parameters
    ----------
    mean, std, n
        Sample mean, sample standard deviation (``ddof=1``) and sample size, element-wise.
    confidence
        Coverage of the interval.

    Returns
    -------
    Lower and upper bounds; NaN where ``n < 2`` (no spread can be estimated from one seed).

    """
    mean, std, n = (np.asarray(a, dtype=float) for a in (mean, std, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        degrees = np.where(n >= 2, n - 1, np.nan)
        half_width = stats.t.ppf(0.5 + confidence / 2, degrees) * std / np.sqrt(n)
    return mean - half_width, mean + half_width


def verdicts(ci_low: np.ndarray, ci_high: np.ndarray, higher_is_better: np.ndarray) -> np.ndarray:
    """``"better"``/``"worse"`` where the interval excludes 0, else ``"no detectable difference"``.

    Parameters
    ----------
    ci_low, ci_high
        Interval of the mean difference (model − baseline); NaN bounds never exclude 0.
    higher_is_better
        Whether a positive difference favours the model, element-wise.

    Returns
    -------
    One verdict per element.

    """
    ci_low, ci_high = np.asarray(ci_low, dtype=float), np.asarray(ci_high, dtype=float)
    higher_is_better = np.asarray(higher_is_better, dtype=bool)
    above, below = ci_low > 0, ci_high < 0  # NaN compares False: one seed never makes a claim
    better = np.where(higher_is_better, above, below)
    worse = np.where(higher_is_better, below, above)
    return np.select([better, worse], [VERDICT_BETTER, VERDICT_WORSE], VERDICT_NONE)


def _architecture(model: pd.Series) -> pd.Series:
    """``"modtt-tt:random"`` → ``"modtt-tt"``."""
    return model.str.replace(r":.*$", "", regex=True)


def _module_method(model: pd.Series) -> pd.Series:
    """``"modtt-tt:random"`` → ``"random"``; ``""`` for the default (Ward) modules."""
    return model.str.replace(r"^[^:]*:?", "", regex=True)


def _comparison_requests(models: pd.DataFrame, baselines: Sequence[str]) -> pd.DataFrame:
    """Which model is compared with which, per dataset: ``dataset, model, baseline, comparison``.

    - every MODTT architecture with Ward modules against each baseline;
    - ``modtt-tt[:m]`` against ``modtt-dense[:m]`` (TT vs dense coupling, same modules);
    - ``modtt-X:m`` against ``modtt-X`` (module ablation against Ward modules).
    """
    models = models.assign(
        architecture=_architecture(models["model"]), method=_module_method(models["model"])
    )
    modtt = models[models["architecture"].isin(MODTT_ARCHITECTURES)]
    ward = modtt[modtt["method"] == ""]
    against_baselines = ward[["dataset", "model"]].merge(
        pd.DataFrame({"baseline": list(baselines)}), how="cross"
    )
    against_baselines["comparison"] = "vs " + against_baselines["baseline"]
    dense = modtt[modtt["architecture"] == "modtt-dense"][["dataset", "model", "method"]]
    coupling = (
        modtt[modtt["architecture"] == "modtt-tt"][["dataset", "model", "method"]]
        .merge(dense.rename(columns={"model": "baseline"}), on=["dataset", "method"])
        .assign(comparison="TT vs dense coupling")
    )
    ablated = modtt[modtt["method"] != ""]
    ablation = ablated[["dataset", "model", "method"]].assign(
        baseline=ablated["architecture"], comparison=ablated["method"] + " vs Ward modules"
    )
    requests = pd.concat([against_baselines, coupling, ablation], ignore_index=True)
    requests = requests[requests["model"] != requests["baseline"]]
    return requests[["dataset", "model", "baseline", "comparison"]].drop_duplicates()


def _match_runs(requests: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Pick, for every run of a requested model, the baseline run it is compared with.

    The baseline run has the same protocol when the baseline has it; otherwise the protocol's
    counterpart in :data:`COUNTERPARTS` (MODTT's ``native`` against totalVI's and scVI's
    ``latent_flow``: both sample a conditional flow prior), or else the baseline's only protocol
    (linear's ``linear``). Likewise the same budget, or else its ``default`` budget when that is
    the only budget it was run at. A sized baseline (flat) with no run at the model's budget is
    not compared: different budgets are not a like-for-like pair.
    """
    model_runs = requests.merge(runs, on=["dataset", "model"])
    baseline_runs = runs.rename(
        columns={"model": "baseline", "protocol": "baseline_protocol", "budget": "baseline_budget"}
    )
    candidates = model_runs.merge(baseline_runs, on=["dataset", "baseline"])
    candidates["protocol_match"] = candidates["protocol"] == candidates["baseline_protocol"]
    candidates["counterpart_match"] = (
        candidates["protocol"].map(COUNTERPARTS) == candidates["baseline_protocol"]
    )
    candidates["budget_match"] = candidates["budget"] == candidates["baseline_budget"]
    candidates["baseline_default"] = candidates["baseline_budget"] == "default"
    grouped = candidates.groupby(RUN_KEYS + ["baseline"], sort=False)
    any_protocol_match = grouped["protocol_match"].transform("any")
    any_counterpart_match = grouped["counterpart_match"].transform("any")
    single_protocol = grouped["baseline_protocol"].transform("nunique") == 1
    any_budget_match = grouped["budget_match"].transform("any")
    default_only = grouped["baseline_default"].transform("all")
    protocol_kept = candidates["protocol_match"] | (
        ~any_protocol_match
        & (candidates["counterpart_match"] | (~any_counterpart_match & single_protocol))
    )
    budget_kept = candidates["budget_match"] | (~any_budget_match & default_only)
    keep = protocol_kept & budget_kept
    return candidates.loc[keep, RUN_KEYS + ["comparison"] + _BASELINE_KEYS]


def seed_scores(results: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One compared value per run, seed and metric (duplicated rows averaged), with ``n_params``.

    Parameters
    ----------
    results
        Tidy benchmark results
        (``dataset, model, protocol, seed, budget, n_params, metric, value``).
    metrics
        Metrics to keep.

    Returns
    -------
    ``dataset, model, protocol, budget, seed, metric, score, n_params`` where ``score`` is
    :func:`compared_values` of the value; rows with a missing value are dropped.

    """
    kept = results[results["metric"].isin(list(metrics))].dropna(subset=["value"])
    kept = kept.assign(
        budget=kept["budget"].astype(str), score=compared_values(kept["metric"], kept["value"])
    )
    return kept.groupby(RUN_KEYS + ["seed", "metric"], as_index=False, sort=False).agg(
        score=("score", "mean"), n_params=("n_params", "median")
    )


def paired_differences(
    results: pd.DataFrame,
    baselines: Sequence[str] = ("flat", "totalvi", "linear"),
    metrics: Sequence[str] = HEADLINE_METRICS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Paired per-seed differences (model − baseline) with t-intervals and a verdict.

    Comparisons, each within one dataset and over the seeds both runs share:

    - every MODTT architecture with Ward modules (``modtt-tt``, ``modtt-dense``), under each of
      its protocols, against each of ``baselines``: with the same protocol and budget where the
      baseline has them (flat; totalVI's ``latent_gaussian`` and ``latent_flow``), ``native``
      against the baseline's ``latent_flow`` (:data:`COUNTERPARTS`), else with the baseline's
      only protocol (``linear``), at the baseline's default budget when it has no other;
    - ``modtt-tt`` against ``modtt-dense`` at the same protocol, budget and module method;
    - each module ablation (``modtt-X:random``, ``modtt-X:hallmark``) against ``modtt-X``.

    The mean difference gets a two-sided Student-t interval, ``mean ± t(n−1) · sd / √n``. The
    verdict is ``"better"`` or ``"worse"`` (for the model) only when the interval excludes 0,
    read in the metric's better direction (:data:`HIGHER_IS_BETTER`); otherwise, and always with
    a single seed, it is ``"no detectable difference"``.

    ``c2st_auc`` is compared as ``|AUC − 0.5|`` (lower is better): 0.5 is ideal and an AUC below
    it is as distinguishable as its mirror above it. Every other metric is compared on its value.

    Parameters
    ----------
    results
        Tidy benchmark results, e.g. ``pd.read_csv("results.csv", dtype={"budget": str})``.
    baselines
        Models every MODTT architecture is compared with.
    metrics
        Metrics to compare; each must be in :data:`HIGHER_IS_BETTER`.
    confidence
        Coverage of the intervals.

    Returns
    -------
    One row per comparison and metric with the columns of :data:`PAIRED_COLUMNS`:
    ``comparison`` names its kind, ``model_mean``/``baseline_mean`` are means over the paired
    seeds on the compared scale (``compared_on``), ``mean_difference`` is model − baseline on
    that scale, ``n_params``/``baseline_n_params`` the median parameter counts.

    Examples
    --------
    >>> import pandas as pd
    >>> from scmodtt.benchmark._stats import paired_differences
    >>> results = pd.read_csv("results/quick/results.csv", dtype={"budget": str})  # doctest: +SKIP
    >>> table = paired_differences(results, metrics=["cond_r"])  # doctest: +SKIP
    >>> table.query("baseline == 'flat'")[["model", "protocol", "verdict"]]  # doctest: +SKIP

    """
    unknown = sorted(set(metrics) - set(HIGHER_IS_BETTER))
    if unknown:
        raise ValueError(
            f"No better direction is known for {unknown}; use {sorted(HIGHER_IS_BETTER)}."
        )
    scores = seed_scores(results, metrics)
    if scores.empty:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    runs = scores[RUN_KEYS].drop_duplicates()
    requests = _comparison_requests(runs[["dataset", "model"]].drop_duplicates(), baselines)
    pairs = _match_runs(requests, runs)
    baseline_scores = scores.rename(
        columns={
            "model": "baseline",
            "protocol": "baseline_protocol",
            "budget": "baseline_budget",
            "score": "baseline_score",
            "n_params": "baseline_n_params",
        }
    )
    paired = pairs.merge(scores, on=RUN_KEYS).merge(
        baseline_scores, on=["dataset", *_BASELINE_KEYS, "seed", "metric"]
    )
    paired["difference"] = paired["score"] - paired["baseline_score"]
    keys = ["dataset", "comparison", *RUN_KEYS[1:], *_BASELINE_KEYS, "metric"]
    summary = paired.groupby(keys, as_index=False, sort=False).agg(
        n_seeds=("difference", "size"),
        model_mean=("score", "mean"),
        baseline_mean=("baseline_score", "mean"),
        mean_difference=("difference", "mean"),
        difference_std=("difference", "std"),
        n_params=("n_params", "median"),
        baseline_n_params=("baseline_n_params", "median"),
    )
    summary["ci_low"], summary["ci_high"] = t_interval(
        summary["mean_difference"], summary["difference_std"], summary["n_seeds"], confidence
    )
    summary["higher_is_better"] = summary["metric"].map(HIGHER_IS_BETTER).astype(bool)
    summary["compared_on"] = summary["metric"].map(compared_on)
    summary["verdict"] = verdicts(
        summary["ci_low"], summary["ci_high"], summary["higher_is_better"]
    )
    return summary[PAIRED_COLUMNS].reset_index(drop=True)

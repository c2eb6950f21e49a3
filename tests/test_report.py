"""Paired statistics and the benchmark report on a small fake ``results.csv``.

The fake benchmark has one dataset, 3 seeds and the models modtt-tt, flat (both at two budgets,
both with the native, latent-Gaussian and latent-flow protocols), totalvi (both latent protocols),
linear and oracle. Each metric value
is a per-seed level shared by all models (the split effect the paired design removes) plus a
per-model offset plus small noise, and the offsets are chosen so that the verdicts are known:

- cond_r: modtt-tt is 0.2 above flat in every seed (→ "better"); totalvi equals modtt-tt
  on average, with seed-to-seed scatter that sums to zero (→ "no detectable difference");
- mmd2_rbf (lower is better): modtt-tt is below flat (→ "better") and above linear (→ "worse");
- c2st_auc (0.5 ideal, compared as |AUC − 0.5|): modtt-tt sits just above 0.5 and linear far
  below it, so modtt-tt − linear is positive on the raw AUC but modtt-tt is "better".

Sampling speed depends on the protocol only (:data:`SAMPLING_SPEED`), so its ratio to totalvi
shows which of totalvi's protocols a run is divided by.

Expectations are computed from the fake frame, never copied from an output.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scmodtt.benchmark import PROTOCOLS, write_report
from scmodtt.benchmark._figures import plot_umap_grid
from scmodtt.benchmark._reproduce import reproduce_commands
from scmodtt.benchmark._stats import (
    COUNTERPARTS,
    HEADLINE_METRICS,
    VERDICT_BETTER,
    VERDICT_NONE,
    VERDICT_WORSE,
    compared_values,
    paired_differences,
    t_interval,
)
from scmodtt.benchmark._summary import speed_summary
from scmodtt.pl import _embedding

DATASET = "toy_pbmc"
SEEDS = (0, 1, 2)
BUDGETS = ("60k", "200k")
N_FEATURES = 12
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODTT_PROTOCOLS = ("native", "latent_gaussian", "latent_flow")
TOTALVI_PROTOCOLS = ("latent_gaussian", "latent_flow")
#: Synthetic cells per second of each protocol, whatever the model.
SAMPLING_SPEED = {
    "native": 2000.0,
    "latent_gaussian": 5000.0,
    "latent_flow": 500.0,
    "linear": 8000.0,
    "oracle": 9000.0,
}


def _runs() -> list[tuple[str, str, str, int]]:
    """(model, protocol, budget, n_params) of every run in the fake benchmark."""
    runs = []
    for model, size in (("modtt-tt", 1.0), ("flat", 1.1)):
        for budget in BUDGETS:
            n_params = int(float(budget[:-1]) * 1000 * size)
            runs += [(model, protocol, budget, n_params) for protocol in MODTT_PROTOCOLS]
    runs += [("totalvi", protocol, "default", 2_600_000) for protocol in TOTALVI_PROTOCOLS]
    runs += [
        ("linear", "linear", "default", 0),
        ("oracle", "oracle", "default", 0),
    ]
    return runs


# Offset of each model from the per-seed level, per metric.
OFFSETS = {
    "cond_r": {"modtt-tt": 0.2, "flat": 0.0, "totalvi": 0.2, "linear": 0.1, "oracle": 0.35},
    "mmd2_rbf": {"modtt-tt": 0.02, "flat": 0.05, "totalvi": 0.02, "linear": 0.0, "oracle": 0.0},
    # AUC: modtt-tt ≈ 0.55, flat ≈ 0.8, linear ≈ 0.25 (as distinguishable as 0.75), oracle ≈ 0.5.
    "c2st_auc": {"modtt-tt": 0.05, "flat": 0.3, "totalvi": 0.1, "linear": -0.25, "oracle": 0.0},
}


def fake_results(rng: np.random.Generator) -> pd.DataFrame:
    """Tidy rows like those of ``scmodtt.benchmark.run`` (see the module docstring)."""
    metrics = [*HEADLINE_METRICS, "trtr_f1"]
    seed_level = {metric: rng.normal(0.5, 0.05, size=len(SEEDS)) for metric in metrics}
    seed_level["mmd2_rbf"] = rng.uniform(0.01, 0.02, size=len(SEEDS))
    seed_level["c2st_auc"] = np.full(len(SEEDS), 0.5)
    # totalvi's scatter around modtt-tt: drawn, then centred so that its mean is exactly 0.
    totalvi_scatter = rng.normal(0, 0.05, size=len(SEEDS))
    totalvi_scatter -= totalvi_scatter.mean()
    rows = []
    for model, protocol, budget, n_params in _runs():
        for metric in metrics:
            offset = OFFSETS.get(metric, {}).get(model, rng.normal(0, 0.05))
            values = seed_level[metric] + offset + rng.normal(0, 0.002, size=len(SEEDS))
            if model == "totalvi" and metric == "cond_r":
                values = values + totalvi_scatter
            rows += [
                (DATASET, model, protocol, seed, budget, n_params, metric, value)
                for seed, value in zip(SEEDS, values, strict=True)
            ]
        if model not in ("linear", "oracle"):
            measurements = {
                "train_seconds": 100.0 * (1 + n_params / 1e6),
                "epochs": 30.0,
                "median_epoch_seconds": 3.0 * (1 + n_params / 1e6),
                "peak_memory_increase_mib": 200.0,
            }
            rows += [
                (
                    DATASET,
                    model,
                    protocol,
                    seed,
                    budget,
                    n_params,
                    metric,
                    value * (1 + 0.01 * seed),
                )
                if metric != "epochs"
                else (DATASET, model, protocol, seed, budget, n_params, metric, value)
                for metric, value in measurements.items()
                for seed in SEEDS
            ]
        speed = SAMPLING_SPEED[protocol]
        rows += [
            (DATASET, model, protocol, seed, budget, n_params, "sample_cells_per_s", speed)
            for seed in SEEDS
        ]
    return pd.DataFrame(
        rows,
        columns=["dataset", "model", "protocol", "seed", "budget", "n_params", "metric", "value"],
    )


def write_fake_benchmark(out, rng: np.random.Generator, synthetic: bool = True) -> pd.DataFrame:
    """``results.csv``, metadata and (optionally) ``synthetic/*.npz`` in ``out``."""
    results = fake_results(rng)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    metadata = {
        "dataset": DATASET,
        "data": DATASET,
        "labels_key": "cell_type",
        "models": sorted(results["model"].unique()),
        "seeds": list(SEEDS),
        "budgets": list(BUDGETS),
        "max_epochs": 30,
        "n_top_genes": 2000,
        "dropped_rare_labels": {},
        "versions": {"scmodtt": "0.1.0"},
        "runs": [],
    }
    (out / f"metadata_{DATASET}.json").write_text(json.dumps(metadata))
    if synthetic:
        folder = out / "synthetic"
        folder.mkdir()
        # Object dtype, as the benchmark saves pandas labels: the report must not need to unpickle.
        labels = np.repeat(["B", "T"], 60).astype(object)
        real = rng.normal(size=(len(labels), N_FEATURES)).astype(np.float32)
        np.savez_compressed(folder / f"{DATASET}__real__test.npz", values=real, labels=labels)
        for name in ("modtt-tt__native", "modtt-tt__latent_flow", "totalvi__latent_flow"):
            values = rng.normal(0.3, 1.0, size=real.shape).astype(np.float32)
            np.savez_compressed(folder / f"{DATASET}__{name}.npz", values=values, labels=labels)
    return results


@pytest.fixture
def results() -> pd.DataFrame:
    return fake_results(np.random.default_rng(0))


@pytest.fixture
def fast_umap(monkeypatch):
    """Stand in for scanpy's UMAP (≈ 20 s of numba compilation) with the first two features."""
    monkeypatch.setattr(_embedding, "_umap_coordinates", lambda values, seed=0: values[:, :2])


def _one(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.logical_and.reduce([table[k] == v for k, v in where.items()])
    assert mask.sum() == 1, f"expected one row for {where}, got {mask.sum()}"
    return table[mask].iloc[0]


def _seed_values(results: pd.DataFrame, model, protocol, budget, metric) -> np.ndarray:
    rows = results[
        (results["model"] == model)
        & (results["protocol"] == protocol)
        & (results["budget"] == budget)
        & (results["metric"] == metric)
    ].sort_values("seed")
    return compared_values(rows["metric"], rows["value"]).to_numpy()


# ---------------------------------------------------------------------- paired statistics
def test_paired_difference_matches_a_t_interval_computed_from_the_data(results):
    table = paired_differences(results)
    row = _one(
        table, model="modtt-tt", protocol="native", budget="60k", baseline="flat", metric="cond_r"
    )
    differences = _seed_values(results, "modtt-tt", "native", "60k", "cond_r") - _seed_values(
        results, "flat", "native", "60k", "cond_r"
    )
    low, high = stats.t.interval(
        0.95, len(differences) - 1, loc=differences.mean(), scale=stats.sem(differences)
    )
    assert row["n_seeds"] == len(SEEDS)
    assert row["baseline_protocol"] == "native" and row["baseline_budget"] == "60k"
    assert row["mean_difference"] == pytest.approx(differences.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert row["verdict"] == VERDICT_BETTER


def test_modtt_beats_flat_but_not_totalvi_on_cond_r(results):
    table = paired_differences(results).query("metric == 'cond_r' and model == 'modtt-tt'")
    for protocol in MODTT_PROTOCOLS:
        for budget in BUDGETS:
            at = {"protocol": protocol, "budget": budget}
            assert _one(table, baseline="flat", **at)["verdict"] == VERDICT_BETTER
            # totalVI has both latent protocols, at its default size only: the latent protocols
            # meet their own, native meets its counterpart (latent_flow).
            versus_totalvi = _one(table, baseline="totalvi", **at)
            expected = protocol if protocol in TOTALVI_PROTOCOLS else COUNTERPARTS[protocol]
            assert versus_totalvi["baseline_protocol"] == expected
            assert versus_totalvi["baseline_budget"] == "default"
            assert versus_totalvi["verdict"] == VERDICT_NONE
    assert COUNTERPARTS == {"native": "latent_flow"}


def test_lower_is_better_metrics_point_the_right_way(results):
    table = paired_differences(results).query("model == 'modtt-tt' and protocol == 'native'")
    mmd_flat = _one(table, metric="mmd2_rbf", baseline="flat", budget="60k")
    assert mmd_flat["mean_difference"] < 0 and mmd_flat["verdict"] == VERDICT_BETTER
    mmd_linear = _one(table, metric="mmd2_rbf", baseline="linear", budget="60k")
    assert mmd_linear["mean_difference"] > 0 and mmd_linear["verdict"] == VERDICT_WORSE

    # C2ST: linear's raw AUC is far *below* modtt-tt's, yet modtt-tt is closer to 0.5.
    c2st = _one(table, metric="c2st_auc", baseline="linear", budget="60k")
    raw_auc = {
        model: results.query(f"model == '{model}' and metric == 'c2st_auc'")["value"].mean()
        for model in ("modtt-tt", "linear")
    }
    assert raw_auc["modtt-tt"] > raw_auc["linear"]
    assert c2st["compared_on"] == "|value − 0.5|"
    assert c2st["model_mean"] == pytest.approx(
        np.abs(_seed_values(results, "modtt-tt", "native", "60k", "c2st_auc")).mean()
    )
    assert c2st["mean_difference"] < 0 and c2st["verdict"] == VERDICT_BETTER
    # Flat's AUC is further from 0.5 than modtt-tt's.
    assert (
        _one(table, metric="c2st_auc", baseline="flat", budget="60k")["verdict"] == VERDICT_BETTER
    )


def test_coupling_and_module_ablations_are_paired_with_their_counterparts(results):
    dense = results[results["model"] == "modtt-tt"].assign(model="modtt-dense")
    ablation = results[results["model"] == "modtt-tt"].assign(model="modtt-tt:random")
    extended = pd.concat([results, dense, ablation], ignore_index=True)
    table = paired_differences(extended, metrics=["cond_r"])
    coupling = table[table["comparison"] == "TT vs dense coupling"]
    assert set(coupling["model"]) == {"modtt-tt"} and set(coupling["baseline"]) == {"modtt-dense"}
    assert (coupling["protocol"] == coupling["baseline_protocol"]).all()
    assert (coupling["budget"] == coupling["baseline_budget"]).all()
    assert len(coupling) == len(MODTT_PROTOCOLS) * len(BUDGETS)
    random = table[table["model"] == "modtt-tt:random"]
    assert set(random["baseline"]) == {"modtt-tt"}
    assert len(random) == len(MODTT_PROTOCOLS) * len(BUDGETS)
    # Identical runs differ by exactly 0 in every seed: a zero-width interval that includes 0.
    assert (random["mean_difference"] == 0).all()
    assert (random["verdict"] == VERDICT_NONE).all()


def test_a_single_seed_never_gets_a_verdict(results):
    table = paired_differences(results[results["seed"] == 0], metrics=["cond_r"])
    assert (table["n_seeds"] == 1).all()
    assert table["ci_low"].isna().all()
    assert (table["verdict"] == VERDICT_NONE).all()


def test_t_interval_widths():
    low, high = t_interval([1.0, 1.0], [0.5, 0.5], [4, 9])
    expected_half = stats.t.ppf(0.975, [3, 8]) * 0.5 / np.sqrt([4, 9])
    np.testing.assert_allclose(high - 1.0, expected_half)
    np.testing.assert_allclose(1.0 - low, expected_half)


def test_unknown_metric_direction_is_refused(results):
    with pytest.raises(ValueError, match="better direction"):
        paired_differences(results, metrics=["epochs"])


# ---------------------------------------------------------------------- the report
def _png_is_written(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_report_has_tables_figures_and_reproduce_line(tmp_path, fast_umap):
    out = tmp_path / "bench"
    results = write_fake_benchmark(out, np.random.default_rng(1))
    report = write_report(out)
    text = report.read_text()

    assert report == out / "report.md"
    cond = results.query(
        "model == 'modtt-tt' and protocol == 'native' and budget == '60k' and metric == 'cond_r'"
    )["value"]
    row = next(line for line in text.splitlines() if line.startswith("| modtt-tt | native | 60k |"))
    assert f"{cond.mean():.3f} ± {cond.std():.3f}" in row
    assert f"| {len(SEEDS)} |" in row
    for model, protocol in (
        ("totalvi", "latent_gaussian"),
        ("totalvi", "latent_flow"),
        ("linear", "linear"),
        ("oracle", "oracle"),
    ):
        assert f"| {model} | {protocol} | default |" in text

    assert "| vs flat | modtt-tt (native, 60k) | flat (native, 60k) |" in text
    assert "| vs totalvi | modtt-tt (native, 60k) | totalvi (latent_flow, default) |" in text
    assert (
        "| vs totalvi | modtt-tt (latent_gaussian, 60k) | totalvi (latent_gaussian, default) |"
        in text
    )
    for name, protocol in PROTOCOLS.items():  # every protocol is described
        assert f"- `{name}`: {protocol.description}." in text
    assert "**better**" in text and "n.d." in text
    assert "### Training and sampling speed" in text
    # Ratios to totalvi are medians of per-seed ratios: modtt-tt at 60k trains faster here.
    speed = results[results["metric"] == "train_seconds"].pivot_table(
        index="seed", columns=["model", "budget"], values="value", aggfunc="mean"
    )
    ratio = (speed[("modtt-tt", "60k")] / speed[("totalvi", "default")]).median()
    assert f"({ratio:.2f}×)" in text

    reproduce = [
        line for line in text.splitlines() if line.startswith("Reproduce: `scmodtt-benchmark")
    ]
    assert reproduce, "the report must say how to rerun it"
    assert f"--seeds {len(SEEDS)}" in reproduce[0] and "--max-epochs 30" in reproduce[0]
    assert "--budgets 60k,200k" in reproduce[0]
    assert "3 seeds (0, 1, 2), max_epochs=30" in text

    for name in ("metrics", "budget_curves", "umap"):
        figure = out / "figures" / f"{DATASET}_{name}.png"
        assert _png_is_written(figure), figure
        assert f"(figures/{figure.name})" in text


def test_report_without_synthetic_cells_skips_the_umap(tmp_path):
    out = tmp_path / "bench"
    write_fake_benchmark(out, np.random.default_rng(2), synthetic=False)
    text = write_report(out).read_text()
    assert "UMAP skipped: no folder synthetic/" in text
    assert not (out / "figures" / f"{DATASET}_umap.png").exists()
    assert _png_is_written(out / "figures" / f"{DATASET}_metrics.png")


def test_umap_without_real_test_cells_is_skipped_with_a_reason(tmp_path, fast_umap):
    out = tmp_path / "bench"
    write_fake_benchmark(out, np.random.default_rng(3))
    (out / "synthetic" / f"{DATASET}__real__test.npz").unlink()
    note = plot_umap_grid(out / "synthetic", DATASET, out / "umap.png")
    assert note.startswith("no real test cells") and not (out / "umap.png").exists()


def test_default_budget_runs_and_explicit_budgets_get_two_commands(results):
    default_sized = results[results["model"] == "flat"].assign(budget="default")
    runs = pd.concat([results, default_sized], ignore_index=True)
    commands = reproduce_commands(runs, {"data": DATASET, "max_epochs": 5}, "results")
    assert len(commands) == 2
    assert "--budgets" not in commands[0] and "oracle" in commands[0]
    assert "--budgets 60k,200k" in commands[1] and "oracle" not in commands[1]


@pytest.mark.slow
def test_umap_with_scanpy(tmp_path):
    out = tmp_path / "bench"
    write_fake_benchmark(out, np.random.default_rng(4))
    note = plot_umap_grid(out / "synthetic", DATASET, out / "umap.png")
    assert note is None and _png_is_written(out / "umap.png")


def test_sampling_speed_is_divided_by_the_reference_under_a_comparable_protocol(results):
    """Training measurements are per run; sampling speed is divided by totalvi's under the same
    protocol, native's by totalvi's latent_flow, and a protocol totalvi has no match for not at
    all."""
    speed = speed_summary(results).set_index(["model", "protocol", "budget", "metric"])
    for protocol in MODTT_PROTOCOLS:
        compared = protocol if protocol in TOTALVI_PROTOCOLS else COUNTERPARTS[protocol]
        row = speed.loc[("modtt-tt", protocol, "60k", "sample_cells_per_s")]
        assert row["ratio"] == pytest.approx(SAMPLING_SPEED[protocol] / SAMPLING_SPEED[compared])
        # One training serves every protocol: the same ratio on each protocol's row.
        training = speed.loc[("modtt-tt", protocol, "60k", "train_seconds"), "ratio"]
        assert training == speed.loc[("modtt-tt", "native", "60k", "train_seconds"), "ratio"]
    assert np.isnan(speed.loc[("linear", "linear", "default", "sample_cells_per_s"), "ratio"])
    assert (
        speed.loc[("linear", "linear", "default", "sample_cells_per_s"), "median"]
        == (SAMPLING_SPEED["linear"])
    )


def test_no_memory_ratio_against_an_increase_rss_does_not_resolve(results):
    """A reference that reused memory freed by earlier models (an increase under 1 MiB) gives no
    peak-memory ratio; one that grew gives the per-seed ratio."""
    memory = results["metric"] == "peak_memory_increase_mib"
    reference = memory & (results["model"] == "totalvi")
    speed = speed_summary(results).set_index(["model", "protocol", "budget", "metric"])
    key = ("modtt-tt", "native", "60k", "peak_memory_increase_mib")
    grown = speed.loc[key]
    assert np.isfinite(grown["ratio"]) and grown["ratio"] > 0
    reused = speed_summary(results.assign(value=results["value"].where(~reference, 0.004)))
    reused = reused.set_index(["model", "protocol", "budget", "metric"])
    assert np.isnan(reused.loc[key, "ratio"])
    assert reused.loc[key, "median"] == grown["median"]

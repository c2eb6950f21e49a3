"""The benchmark loop and its command line, end to end on ``tiny_cite``.

One small benchmark (modtt-tt, flat, linear, oracle; one seed; two epochs) is run once per module
into a temporary folder and read by several tests; copies of that folder check that reruns resume.
Expectations come from the inputs (models, seeds, label counts) or from the invariants of the
metrics, never from an earlier output. The latent protocols of every latent model and the one
model list are tested in ``test_protocols.py``, parameter budgets in ``test_budget.py``.
"""

from __future__ import annotations

import re
import shlex
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _benchmark_common import (
    COLUMNS,
    CORRELATIONS,
    DATASET,
    FLOW_EPOCHS,
    LABELS_KEY,
    MAX_EPOCHS,
    METRIC_MIN_CELLS,
    MODELS,
    N_MODULES,
    N_TOP_GENES,
    PROBABILITIES,
    QUICK,
    REQUIRED_METRICS,
    TIMING_METRICS,
    TRAINED,
    build_context,
    load_seed_context,
    read_metadata,
    read_results,
    write_h5mu,
)

import scmodtt
from scmodtt.benchmark import _seed as benchmark_seed
from scmodtt.benchmark import _zoo as benchmark_zoo
from scmodtt.benchmark import run
from scmodtt.benchmark._cli import _parser, main
from scmodtt.benchmark._data import (
    MIN_CELLS_FOR_SPLIT,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    load_benchmark_data,
    stratified_split,
)
from scmodtt.benchmark._reproduce import reproduce_commands


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def benchmark_out(tmp_path_factory):
    """Output folder of one quick benchmark of :data:`MODELS` on ``tiny_cite``, seed 0.

    Tests only read it; those that run the benchmark again work on a copy.
    """
    out = tmp_path_factory.mktemp("benchmark") / "out"
    run(data=DATASET, models=list(MODELS), seeds=1, out=out, **QUICK)
    return out


@pytest.fixture(scope="module")
def results(benchmark_out):
    """The rows of the module's benchmark."""
    return read_results(benchmark_out)


@pytest.fixture(scope="module")
def metadata(benchmark_out):
    """The metadata of the module's benchmark."""
    return read_metadata(benchmark_out)


@pytest.fixture(scope="module")
def seed_context():
    """Seed 0's split, features and Ward modules of ``tiny_cite``, as :func:`run` builds them."""
    return load_seed_context()


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """``tiny_cite`` written as ``tiny_copy.h5mu`` (dataset name ``tiny_copy``)."""
    path = tmp_path_factory.mktemp("data") / "tiny_copy.h5mu"
    return write_h5mu(scmodtt.datasets.tiny_cite(), path)


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory, tiny_path):
    """Output folder of the command line on ``tiny_copy.h5mu`` with the linear and oracle models."""
    out = tmp_path_factory.mktemp("cli") / "out"
    main(_cli_args(tiny_path, out))
    return out


def _cli_args(data: Path, out: Path) -> list[str]:
    return [
        "--data",
        str(data),
        "--models",
        "linear,oracle",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--n-modules",
        "rna=8,prot=4",
        "--n-top-genes",
        str(N_TOP_GENES),
        "--metric-min-cells",
        str(METRIC_MIN_CELLS),
    ]


# ---------------------------------------------------------------------- end to end
def test_results_columns_and_runs(results):
    """Tidy columns; every requested model, for the one seed and the default size."""
    assert list(results.columns) == COLUMNS
    assert set(results["model"]) == set(MODELS)
    assert set(results["dataset"]) == {DATASET}
    assert set(results["seed"]) == {0}
    assert set(results["budget"]) == {"default"}


def test_protocols_per_model(results):
    """MODTT architectures: native, latent Gaussian and latent flow; baselines by name."""
    protocols = results.groupby("model")["protocol"].agg(set).to_dict()
    expected = {model: {"native", "latent_gaussian", "latent_flow"} for model in TRAINED}
    for model in TRAINED:  # the spec is the one source of the protocols
        assert set(benchmark_zoo.MODELS[model].protocols) == expected[model]
    expected.update(linear={"linear"}, oracle={"oracle"})
    assert protocols == expected


def test_metrics_present_once_per_run(results):
    """Each run × protocol has the headline metrics, each exactly once."""
    keys = ["model", "protocol", "seed", "budget", "metric"]
    assert not results.duplicated(keys).any()
    for (model, protocol), rows in results.groupby(["model", "protocol"]):
        assert REQUIRED_METRICS <= set(rows["metric"]), (model, protocol)


@pytest.mark.parametrize(
    ("metrics", "low", "high"), [(CORRELATIONS, -1.0, 1.0), (PROBABILITIES, 0.0, 1.0)]
)
def test_metric_ranges(results, metrics, low, high):
    """Correlations lie in [-1, 1]; AUC and F1 scores in [0, 1]; each is defined somewhere."""
    for metric in metrics:
        values = results.loc[results["metric"] == metric, "value"]
        finite = values[np.isfinite(values)]
        assert len(finite) > 0, metric
        assert finite.between(low, high).all(), (metric, finite.tolist())


def test_trtr_does_not_depend_on_the_model(results):
    """TRTR F1 trains and tests on real cells only: one value per seed, whatever the model."""
    trtr = results.loc[results["metric"] == "trtr_f1"]
    assert len(trtr) == results[["model", "protocol"]].drop_duplicates().shape[0]
    assert trtr.groupby("seed")["value"].nunique().eq(1).all()


def test_parameter_counts(results, metadata):
    """Trained models have one positive count per run, as logged; baselines have none."""
    counts = results.groupby("model")["n_params"].agg(set).to_dict()
    for model in TRAINED:
        (n_params,) = counts[model]
        assert n_params > 0
        (logged,) = [r["n_params"] for r in metadata["runs"] if r["model"] == model]
        assert logged == n_params
    assert counts["linear"] == counts["oracle"] == {0}


def test_training_is_capped(results):
    """``max_epochs`` caps every trained model; training-free ones have no training rows."""
    epochs = results.loc[results["metric"] == "epochs"]
    assert set(epochs["model"]) == set(TRAINED)
    assert epochs["value"].between(1, MAX_EPOCHS).all()


def test_metadata(metadata):
    """Settings, package versions and one logged run per model and seed."""
    assert metadata["dataset"] == DATASET
    assert metadata["data"] == DATASET
    assert metadata["models"] == list(MODELS)
    assert metadata["seeds"] == [0]
    assert metadata["n_modules"] == N_MODULES
    assert metadata["max_epochs"] == MAX_EPOCHS
    assert metadata["flow_max_epochs"] == FLOW_EPOCHS
    assert metadata["n_top_genes"] == N_TOP_GENES
    assert metadata["metric_min_cells"] == METRIC_MIN_CELLS
    assert metadata["dropped_labels"] == {}
    assert metadata["versions"]["scmodtt"] == version("scmodtt")
    assert {"scvi-tools", "torch", "mudata"} <= set(metadata["versions"])
    logged = sorted((r["seed"], r["model"]) for r in metadata["runs"])
    assert logged == sorted((0, model) for model in MODELS)


def test_synthetic_cells_follow_test_label_counts(benchmark_out, results):
    """The first seed's synthetic cells are kept per model and protocol, with the test labels."""
    folder = benchmark_out / "synthetic"
    runs = results[["model", "protocol"]].drop_duplicates()
    expected = {f"{DATASET}__{m}__{p}.npz" for m, p in runs.itertuples(index=False)}
    assert {p.name for p in folder.glob("*.npz")} == expected | {f"{DATASET}__real__test.npz"}
    with np.load(folder / f"{DATASET}__real__test.npz") as real:
        real_counts = pd.Series(real["labels"]).value_counts().sort_index()
        n_features = real["values"].shape[1]
    labels = scmodtt.datasets.tiny_cite().obs[LABELS_KEY].astype(str)
    split = stratified_split(labels, seed=0)
    pd.testing.assert_series_equal(
        real_counts, labels.iloc[split.test].value_counts().sort_index(), check_names=False
    )
    for name in expected:
        with np.load(folder / name) as synthetic:
            counts = pd.Series(synthetic["labels"]).value_counts().sort_index()
            assert synthetic["values"].shape == (real_counts.sum(), n_features), name
        pd.testing.assert_series_equal(counts, real_counts, check_names=False)


# ---------------------------------------------------------------------- resuming
def test_rerun_adds_nothing(benchmark_out, results, metadata, tmp_path):
    """Running again with the same arguments skips every finished run."""
    out = tmp_path / "out"
    shutil.copytree(benchmark_out, out)
    returned = run(data=DATASET, models=list(MODELS), seeds=1, out=out, **QUICK)
    pd.testing.assert_frame_equal(read_results(out), results)
    pd.testing.assert_frame_equal(returned, results)
    assert read_metadata(out)["runs"] == metadata["runs"]


def test_new_seed_adds_only_its_rows(benchmark_out, results, metadata, tmp_path):
    """A second seed trains and appends that seed only; seed 0's rows are left as they were."""
    out = tmp_path / "out"
    shutil.copytree(benchmark_out, out)
    run(data=DATASET, models=list(MODELS), seeds=2, out=out, **QUICK)
    after = read_results(out)
    pd.testing.assert_frame_equal(after.iloc[: len(results)], results)
    added = after.iloc[len(results) :]
    assert set(added["seed"]) == {1}
    keys = ["model", "protocol", "metric"]
    seed_keys = added[keys].sort_values(keys).reset_index(drop=True)
    assert seed_keys.equals(results[keys].sort_values(keys).reset_index(drop=True))
    runs = read_metadata(out)["runs"]
    assert runs[: len(metadata["runs"])] == metadata["runs"]
    assert sorted((r["seed"], r["model"]) for r in runs[len(metadata["runs"]) :]) == sorted(
        (1, model) for model in MODELS
    )


# ---------------------------------------------------------------------- splits and features
def test_stratified_split_is_seeded_and_stratified():
    """Same seed, same split; another seed, another split; disjoint, complete, per label."""
    labels = scmodtt.datasets.tiny_cite().obs[LABELS_KEY]
    split = stratified_split(labels, seed=0)
    again = stratified_split(labels, seed=0)
    other = stratified_split(labels, seed=1)
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(split, part), getattr(again, part))
    assert not np.array_equal(split.test, other.test)
    parts = np.concatenate([split.train, split.validation, split.test])
    np.testing.assert_array_equal(np.sort(parts), np.arange(len(labels)))
    counts = labels.value_counts()
    test_counts = labels.iloc[split.test].value_counts()
    validation_counts = labels.iloc[split.validation].value_counts()
    for label, n in counts.items():
        assert abs(test_counts[label] - TEST_FRACTION * n) <= 1, label
        n_fit = n - test_counts[label]
        assert abs(validation_counts[label] - VALIDATION_FRACTION * n_fit) <= 1, label


def test_features_come_from_training_cells(seed_context):
    """Genes and modules do not change when the test cells' counts do (and repeat exactly)."""
    _, mdata = load_benchmark_data(DATASET, LABELS_KEY)
    split = stratified_split(mdata.obs[LABELS_KEY], seed=0)
    np.testing.assert_array_equal(seed_context.test.obs_names, mdata.obs_names[split.test])
    # Make unselected genes wildly variable in the test cells only.
    rna = mdata.mod["rna"]
    counts = rna.X.toarray()
    unselected = np.flatnonzero(~rna.var_names.isin(seed_context.fit["rna"].var_names))[:30]
    rng = np.random.default_rng(0)
    burst = rng.poisson(200, size=(len(split.test), len(unselected)))
    counts[np.ix_(split.test, unselected)] = burst * (rng.random(burst.shape) < 0.5)
    rna.X = type(rna.X)(counts.astype(rna.X.dtype))
    # Selected from all cells, these genes would now be among the chosen ones.
    from_all_cells = benchmark_seed.select_genes(mdata.copy(), N_TOP_GENES)
    assert from_all_cells.isin(rna.var_names[unselected]).any()
    changed = build_context(mdata)
    pd.testing.assert_index_equal(changed.fit["rna"].var_names, seed_context.fit["rna"].var_names)
    for modality in ("rna", "prot"):
        key = "modtt_modules_ward"
        pd.testing.assert_frame_equal(
            pd.DataFrame(changed.fit[modality].varm[key]),
            pd.DataFrame(seed_context.fit[modality].varm[key]),
        )


# ---------------------------------------------------------------------- bad input
def test_too_small_metric_min_cells_refused_before_training(tmp_path):
    """A per-type minimum the kNN metrics cannot use fails at once, with the value to use."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"metric_min_cells \(5\) must exceed k \(5\).*use 6"):
        run(data=DATASET, models=["modtt-tt"], seeds=1, out=out, **{**QUICK, "metric_min_cells": 5})
    assert not (out / "results.csv").exists()


@pytest.mark.parametrize(
    ("models", "match"),
    [
        (["modtt-xx"], "Unknown model 'modtt-xx'"),
        (["linear", "scvi:random"], "only modtt-tt/modtt-dense take a module method"),
        (["modtt-tt:nope"], "only modtt-tt/modtt-dense take a module method"),
    ],
)
def test_bad_model_names(tmp_path, models, match):
    """Model names are checked before any data is read or anything written."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        run(data=DATASET, models=models, seeds=1, out=out, **QUICK)
    assert not out.exists()


def test_missing_labels_key(tmp_path):
    """The benchmark compares cell types, so it needs the labels column."""
    with pytest.raises(ValueError, match="no column 'nope' with labels"):
        run(
            data=DATASET,
            models=["linear"],
            seeds=1,
            out=tmp_path / "out",
            labels_key="nope",
            **QUICK,
        )


@pytest.fixture(scope="module")
def rare_label(tmp_path_factory):
    """(path, label): ``tiny_cite`` where one label keeps only 3 of its cells."""
    mdata = scmodtt.datasets.tiny_cite()
    labels = mdata.obs[LABELS_KEY].astype(str)
    label = sorted(labels.unique())[0]
    keep = (labels != label).to_numpy()
    keep[np.flatnonzero(~keep)[:3]] = True
    path = tmp_path_factory.mktemp("rare") / "tiny_rare.h5mu"
    return write_h5mu(mdata[keep].copy(), path), label


def test_rare_label_refused(tmp_path, rare_label):
    """Without ``min_cells_per_label`` a label too small to split is an error naming it."""
    path, label = rare_label
    match = (
        re.escape(f"have fewer than {MIN_CELLS_FOR_SPLIT} cells")
        + r".*"
        + re.escape(f"{{{label!r}: 3}}")
    )
    with pytest.raises(ValueError, match=match):
        run(data=path, models=["linear"], seeds=1, out=tmp_path / "out", **QUICK)


def test_rare_and_excluded_labels_dropped(tmp_path, rare_label):
    """With ``min_cells_per_label`` the rare label is dropped, like excluded ones; both reported."""
    path, label = rare_label
    labels = scmodtt.datasets.tiny_cite().obs[LABELS_KEY].astype(str)
    excluded = sorted(set(labels) - {label})[0]
    out = tmp_path / "out"
    run(
        data=path,
        models=["linear", "oracle"],
        seeds=1,
        out=out,
        min_cells_per_label=5,
        exclude_labels=[excluded],
        **QUICK,
    )
    metadata = read_metadata(out, path.stem)
    assert metadata["dropped_labels"] == {label: 3, excluded: int((labels == excluded).sum())}
    assert metadata["min_cells_per_label"] == 5
    assert metadata["exclude_labels"] == [excluded]
    assert set(read_results(out)["model"]) == {"linear", "oracle"}
    with np.load(out / "synthetic" / f"{path.stem}__real__test.npz") as real:
        kept = set(real["labels"])
    assert kept == set(labels) - {label, excluded}


def test_excluding_an_unknown_label(tmp_path):
    """Excluding a label the data does not have is an error listing the labels."""
    with pytest.raises(ValueError, match=r"Cannot exclude unknown label\(s\) \['nope'\]"):
        run(
            data=DATASET,
            models=["linear"],
            seeds=1,
            out=tmp_path / "out",
            exclude_labels=["nope"],
            **QUICK,
        )


# ---------------------------------------------------------------------- command line
def test_cli_writes_results_and_report(cli_out, tiny_path):
    """The command line runs the benchmark with its flags and writes the report."""
    rows = read_results(cli_out)
    assert list(rows.columns) == COLUMNS
    assert set(rows["model"]) == {"linear", "oracle"}
    assert set(rows["dataset"]) == {tiny_path.stem}
    metadata = read_metadata(cli_out, tiny_path.stem)
    assert metadata["n_modules"] == N_MODULES
    assert metadata["n_top_genes"] == N_TOP_GENES
    assert metadata["metric_min_cells"] == METRIC_MIN_CELLS
    report = (cli_out / "report.md").read_text()
    assert "--n-modules rna=8,prot=4" in report


def test_cli_reproduce_command_recomputes_rows(cli_out, tmp_path):
    """The report's command, run into a new folder, gives the same rows (timings aside)."""
    report = (cli_out / "report.md").read_text()
    (command,) = re.findall(r"Reproduce: `([^`]*)`", report)
    argv = shlex.split(command)
    assert argv[0] == "scmodtt-benchmark"
    argv = argv[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    main([*argv, "--no-report"])
    assert not (tmp_path / "again" / "report.md").exists()
    before, after = (
        rows[~rows["metric"].isin(TIMING_METRICS)].reset_index(drop=True)
        for rows in (read_results(cli_out), read_results(tmp_path / "again"))
    )
    pd.testing.assert_frame_equal(after, before)


@pytest.mark.parametrize("text", ["rna=abc", "rna", "=5", "rna=8,prot", "rna=0", "rna=8,rna=9"])
def test_cli_bad_n_modules(text, tmp_path, capsys):
    """A malformed ``--n-modules`` is an argparse error (exit status 2) before anything runs."""
    with pytest.raises(SystemExit, match="^2$"):
        main(["--data", DATASET, "--models", "linear", "--out", str(tmp_path), "--n-modules", text])
    assert "--n-modules" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(
    ("text", "seeds"), [("5", 5), ("3,4", [3, 4]), ("2-4", [2, 3, 4]), ("0-1,3", [0, 1, 3])]
)
def test_cli_seeds_count_list_or_range(text, seeds):
    """``--seeds`` takes a count, a list or a range, so two processes can split the seeds."""
    assert _parser().parse_args(["--seeds", text]).seeds == seeds


@pytest.mark.parametrize("text", ["0", "-1", "a", "3-1", "1,1", "2-"])
def test_cli_bad_seeds(text, capsys):
    """A malformed ``--seeds`` is an argparse error that says how to write it."""
    with pytest.raises(SystemExit, match="^2$"):
        _parser().parse_args(["--seeds", text])
    assert "--seeds" in capsys.readouterr().err


def test_reproduce_commands_keep_a_seed_list(results, metadata):
    """Rows of seeds 3 and 4 only are recomputed by ``--seeds 3,4``, not by ``--seeds 2``."""
    shifted = results.assign(seed=results["seed"] + 3)
    (command,) = reproduce_commands(shifted, metadata, "out")
    expected = ",".join(map(str, sorted(shifted["seed"].unique())))
    assert f"--seeds {expected} " in command


def test_reproduce_commands_name_n_modules(results, metadata):
    """``--n-modules`` is in the reproduce command exactly when the run set it."""
    (command,) = reproduce_commands(results, metadata, "out")
    assert "--n-modules rna=8,prot=4" in command
    assert f"--max-epochs {MAX_EPOCHS}" in command and f"--flow-max-epochs {FLOW_EPOCHS}" in command
    (command,) = reproduce_commands(results, {**metadata, "n_modules": None}, "out")
    assert "--n-modules" not in command

"""The transfer benchmark: query mapping, label transfer and protein imputation scores."""

from __future__ import annotations

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmodtt.benchmark
from scmodtt import datasets
from scmodtt.benchmark import TRANSFER_METHODS, transfer
from scmodtt.benchmark._cli import main as cli_main
from scmodtt.benchmark._transfer import (
    LABEL_METRICS,
    NOT_SCORED,
    _imputation_scores,
    _integration_scores,
    _TransferSplit,
    transfer_report,
    transfer_targets,
)

#: Training of every transfer run in these tests: a few epochs, for speed.
QUICK = {"seeds": 1, "max_epochs": 3, "query_epochs": 3, "flow_max_epochs": 20}


@pytest.fixture(scope="module")
def bmmc_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    results = transfer(
        "bmmc_cite",
        batch_key="batch",
        methods=("modtt_query", "totalvi_query"),
        **QUICK,
        out=out,
    )
    return results, out


def test_transfer_results_are_tidy_and_bounded(bmmc_results):
    results, out = bmmc_results
    assert set(results["method"]) == {"modtt_query", "totalvi_query"}
    assert set(results["query"]) == {"s1d2"}  # the last batch by default
    values = results.pivot_table(index="method", columns="metric", values="value")
    for metric in ("label_f1", "clisi", "protein_spearman", "trained_fraction"):
        assert values[metric].between(-1, 1).all(), metric
    assert values["ilisi"].between(0, 1).all()
    # The query model trains only the new batch's decoder columns: well under 5%.
    assert 0 < values.loc["modtt_query", "trained_fraction"] < 0.05
    assert (out / "transfer_results.csv").exists()
    report = (out / "transfer.md").read_text()
    assert "| modtt_query |" in report and "Protocol:" in report


def test_transfer_is_deterministic_under_a_seed(bmmc_results):
    results, _ = bmmc_results
    again = transfer(
        "bmmc_cite",
        batch_key="batch",
        methods=("modtt_query",),
        **QUICK,
    )
    first = results[(results["method"] == "modtt_query") & (results["metric"] != "seconds")]
    second = again[again["metric"] != "seconds"]
    np.testing.assert_allclose(
        first.sort_values("metric")["value"].to_numpy(),
        second.sort_values("metric")["value"].to_numpy(),
    )


def test_imputation_scores_follow_the_correlation():
    rng = np.random.default_rng(0)
    measured = rng.poisson(5.0, size=(200, 6)).astype(float)
    perfect = _imputation_scores(np.expm1(np.log1p(measured)), measured)
    assert perfect["protein_pearson"] == pytest.approx(1.0)
    assert perfect["protein_spearman"] == pytest.approx(1.0)
    noise = _imputation_scores(rng.poisson(5.0, size=(200, 6)).astype(float), measured)
    assert abs(noise["protein_pearson"]) < 0.2


def test_integration_scores_see_batch_mixing():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 100)
    centres = np.where(labels == "a", 0.0, 10.0)[:, None]
    mixed = centres + rng.normal(size=(200, 4))
    batches = np.tile(["x", "y"], 100)
    separated = mixed + np.where(batches == "x", 0.0, 50.0)[:, None]
    assert (
        _integration_scores(mixed, labels, batches)["ilisi"]
        > _integration_scores(separated, labels, batches)["ilisi"] + 0.3
    )


def _results(differences: list[float], metric="label_f1") -> pd.DataFrame:
    rows = []
    for seed, difference in enumerate(differences):
        for method, value in (("modtt_query", 0.8 + difference), ("modtt_retrained", 0.8)):
            rows.append(
                {
                    "dataset": "d",
                    "query": "q",
                    "seed": seed,
                    "method": method,
                    "metric": metric,
                    "value": value,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("differences", "verdict"),
    [
        ([-0.010, -0.012, -0.011], "met"),  # interval above −0.03
        ([-0.100, -0.110, -0.090], "missed"),  # interval below −0.03
        ([0.050, -0.200, 0.010], "not resolved"),
    ],
)
def test_targets_read_the_margin(differences, verdict):
    targets = transfer_targets(_results(differences))
    row = targets[targets["target"].str.startswith("modtt_query − modtt_retrained")].iloc[0]
    assert row["verdict"] == verdict
    assert row["seeds"] == 3
    assert "Targets" in transfer_report(_results(differences))


def test_targets_and_report_say_when_labels_are_not_scored():
    results = _results([np.nan] * 3)
    row = transfer_targets(results).iloc[0]
    assert row["target"].startswith("modtt_query − modtt_retrained on label_f1")
    assert (row["verdict"], row["seeds"]) == (NOT_SCORED, 0) and np.isnan(row["mean"])
    report = transfer_report(results)
    assert f"label_f1 of query q: {NOT_SCORED}" in report
    assert f"| — | 0 | {NOT_SCORED} |" in report
    assert "Reference batches" not in report


def test_transfer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown transfer method"):
        transfer("bmmc_cite", batch_key="batch", methods=("nope",))
    with pytest.raises(ValueError, match="No batch 'zzz'"):
        transfer("bmmc_cite", batch_key="batch", query_batch="zzz", methods=TRANSFER_METHODS[:1])


# ---------------------------------------------------------------------- unlabelled queries
@pytest.fixture(scope="module")
def tiny_panel(tmp_path_factory):
    """The PBMC panel cut small: 100 labelled REAP-seq cells, 60 ECCITE-seq, 40 PBMC5k."""
    panel = datasets.pbmc_panel()
    tiny = datasets.tiny_cite()
    reapseq = tiny.obs.groupby("cell_type", observed=True).head(20).index
    obs = panel.obs
    cells = [
        *reapseq,
        *obs.index[obs["dataset"] == "eccite"][:60],
        *obs.index[obs["dataset"] == "pbmc5k"][:40],
    ]
    genes = panel["rna"].var_names.intersection(tiny["rna"].var_names, sort=False)
    small = mudata.MuData(
        {"rna": panel["rna"][cells, genes].copy(), "prot": panel["prot"][cells].copy()}
    )
    small.obs = obs.loc[cells].copy()
    path = tmp_path_factory.mktemp("panel") / "tiny_panel.h5mu"
    small.write(path)
    return path


@pytest.fixture(scope="module")
def panel_results(tiny_panel, tmp_path_factory):
    out = tmp_path_factory.mktemp("panel_transfer")
    results = transfer(
        tiny_panel,
        batch_key="dataset",
        query_batch="eccite",
        reference_batches=["reapseq"],
        methods=("modtt_query", "totalvi_query"),
        n_top_genes=None,
        **QUICK,
        out=out,
    )
    return results, out


def test_unlabelled_query_gets_imputation_scores_and_no_label_scores(panel_results):
    results, out = panel_results
    assert set(results["query"]) == {"eccite"}
    assert set(results["method"]) == {"modtt_query", "totalvi_query"}
    values = results.pivot_table(index="method", columns="metric", values="value", dropna=False)
    for metric in LABEL_METRICS:
        assert values[metric].isna().all(), metric
    for metric in ("protein_pearson", "protein_spearman", "ilisi", "trained_fraction"):
        assert np.isfinite(values[metric]).all(), metric
    assert values["protein_pearson"].between(-1, 1).all()
    assert set(results.columns) == {"dataset", "query", "seed", "method", "metric", "value"}
    report = (out / "transfer.md").read_text()
    assert "Reference batches: reapseq." in report
    assert f"clisi, label_f1, silhouette_label of query eccite: {NOT_SCORED}" in report
    assert "| not scored |" in report
    targets = transfer_targets(results).set_index("target")
    clisi = targets.loc["modtt_query − totalvi_query on clisi ≥ −0"]
    assert clisi["verdict"] == NOT_SCORED and clisi["seeds"] == 0
    pearson = targets.loc["modtt_query − totalvi_query on protein_pearson ≥ −0"]
    assert pearson["seeds"] == 1 and np.isfinite(pearson["mean"])


def test_reference_batches_choose_the_reference_cells(tiny_panel):
    mdata = mudata.read_h5mu(tiny_panel)
    split = _TransferSplit.build(
        mdata, "cell_type", "dataset", "eccite", ["reapseq"], n_top_genes=None, seed=0
    )
    assert set(split.reference.obs["dataset"]) == {"reapseq"} and split.reference.n_obs == 100
    assert split.query_rna.n_obs == 60 and set(split.query_rna.mod) == {"rna"}
    assert "cell_type" not in split.query_rna.obs  # hidden from the models
    assert list(split.query_truth["prot"].var_names) == list(mdata["prot"].var_names)


def test_transfer_rejects_bad_reference_batches(tiny_panel):
    kwargs = {"batch_key": "dataset", "query_batch": "eccite", "methods": ("modtt_query",)}
    with pytest.raises(ValueError, match=r"No reference batch \['nope'\]"):
        transfer(tiny_panel, reference_batches=["nope"], **kwargs)
    with pytest.raises(ValueError, match="cannot also be a reference batch"):
        transfer(tiny_panel, reference_batches=["reapseq", "eccite"], **kwargs)
    # The default reference of query reapseq (ECCITE-seq + PBMC5k) has no labels to transfer.
    with pytest.raises(ValueError, match=r"no labelled cell.*labelled: \['reapseq'\]"):
        transfer(tiny_panel, batch_key="dataset", query_batch="reapseq")


def _scored_split(reference_labels, query_labels, reference_latent, query_latent):
    """A split with only what `score` reads: labels, batches and the query's measured ADTs."""

    def cells(labels, batch, adts):
        obs = pd.DataFrame({"cell_type": labels, "batch": batch})
        obs.index = [f"{batch}{i}" for i in range(len(labels))]
        prot = ad.AnnData(sp.csr_matrix(adts), obs=obs.copy())
        data = mudata.MuData({"prot": prot})
        data.obs = obs
        return data

    rng = np.random.default_rng(0)
    n_query = len(query_labels)
    measured = rng.poisson(5.0, size=(n_query, 3)).astype(np.float32)
    split = _TransferSplit(
        cells(reference_labels, "ref", np.zeros((len(reference_labels), 3))),
        None,
        cells(query_labels, "qry", measured),
        "cell_type",
        "batch",
        "qry",
    )
    return split.score(reference_latent, query_latent, measured, 0.01)


def test_unknown_reference_cells_do_not_enter_the_classifier():
    rng = np.random.default_rng(0)
    # Reference a at 0, b at 10, unlabelled cells at 20, right where the query's b cells are.
    reference_labels = np.repeat(["a", "b", "unknown"], 30)
    reference_latent = np.repeat([0.0, 10.0, 20.0], 30)[:, None] + rng.normal(size=(90, 2))
    query_labels = np.repeat(["a", "b"], 20)
    query_latent = np.repeat([0.0, 20.0], 20)[:, None] + rng.normal(size=(40, 2))
    scores = _scored_split(reference_labels, query_labels, reference_latent, query_latent)
    assert scores["label_f1"] == pytest.approx(1.0)  # "unknown" is never predicted
    # Biology scores count labelled cells only: the unknown ones would lower cLISI otherwise.
    labelled = np.concatenate([reference_labels != "unknown", np.ones(40, bool)])
    latent = np.vstack([reference_latent, query_latent])
    labels = np.concatenate([reference_labels, query_labels])
    batches = np.repeat(["ref", "qry"], [90, 40])
    alone = _integration_scores(latent[labelled], labels[labelled], batches[labelled])
    assert scores["clisi"] == pytest.approx(alone["clisi"])
    assert scores["silhouette_label"] == pytest.approx(alone["silhouette_label"])
    assert scores["ilisi"] == pytest.approx(_integration_scores(latent, labels, batches)["ilisi"])
    # An unlabelled query: label scores NaN, the rest scored.
    unlabelled = _scored_split(
        reference_labels, np.repeat("unknown", 40), reference_latent, query_latent
    )
    assert all(np.isnan(unlabelled[metric]) for metric in LABEL_METRICS)
    assert unlabelled["protein_pearson"] == pytest.approx(1.0)
    assert unlabelled["ilisi"] == pytest.approx(scores["ilisi"])


def test_cli_passes_reference_batches(monkeypatch, tmp_path):
    seen = {}

    def fake_transfer(**kwargs):
        seen.update(kwargs)
        (kwargs["out"] / "transfer.md").write_text("# Transfer benchmark\n")

    monkeypatch.setattr(scmodtt.benchmark, "transfer", fake_transfer)
    cli_main(
        ["--task", "transfer", "--data", "pbmc_panel", "--batch-key", "dataset"]
        + ["--query-batch", "eccite", "--reference-batches", "reapseq, pbmc5k"]
        + ["--out", str(tmp_path)]
    )
    assert seen["reference_batches"] == ["reapseq", "pbmc5k"]
    assert (seen["data"], seen["batch_key"], seen["query_batch"]) == (
        "pbmc_panel",
        "dataset",
        "eccite",
    )
    cli_main(["--task", "transfer", "--out", str(tmp_path)])
    assert seen["reference_batches"] is None

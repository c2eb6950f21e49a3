"""The transfer benchmark: query mapping, label transfer and protein imputation scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scmodtt.benchmark import TRANSFER_METHODS, transfer
from scmodtt.benchmark._transfer import (
    _imputation_scores,
    _integration_scores,
    transfer_report,
    transfer_targets,
)


@pytest.fixture(scope="module")
def bmmc_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    results = transfer(
        "bmmc_cite",
        batch_key="batch",
        seeds=1,
        methods=("modtt_query", "totalvi_query"),
        max_epochs=3,
        query_epochs=3,
        flow_max_epochs=20,
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
        seeds=1,
        methods=("modtt_query",),
        max_epochs=3,
        query_epochs=3,
        flow_max_epochs=20,
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


def test_transfer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown transfer method"):
        transfer("bmmc_cite", batch_key="batch", methods=("nope",))
    with pytest.raises(ValueError, match="No batch 'zzz'"):
        transfer("bmmc_cite", batch_key="batch", query_batch="zzz", methods=TRANSFER_METHODS[:1])

"""The speed benchmark: fresh-process runs, budgets, sampling speed and the summary's ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scmodtt
from scmodtt.benchmark import measure_training_speed
from scmodtt.benchmark._cli import _parser
from scmodtt.benchmark._speed import speed_table, summarize_speed


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """``tiny_cite`` with Ward modules, written where the fresh processes can read it."""
    mdata = scmodtt.datasets.tiny_cite()
    scmodtt.pp.find_modules(mdata, n_modules={"rna": 6, "prot": 3}, method="ward")
    path = tmp_path_factory.mktemp("speed") / "tiny.h5mu"
    mdata.write(path)
    return path


@pytest.fixture(scope="module")
def speed_runs(tiny_path):
    """Two models, one extra size, one repeat each, on the tiny data (each a fresh process)."""
    return measure_training_speed(
        tiny_path,
        models=["modtt-tt", "totalvi"],
        n_epochs=2,
        n_warmup_epochs=1,
        repeats=1,
        sizes={"modtt-tt": {"small": {"module_dim": 2, "tt_rank": 2}}},
        n_sample_cells=200,
        threads=1,
    )


def test_speed_runs_every_model_and_size_in_its_own_process(speed_runs):
    runs, summary = speed_runs
    assert sorted(zip(runs["model"], runs["budget"], strict=True)) == [
        ("modtt-tt", "default"),
        ("modtt-tt", "small"),
        ("totalvi", "default"),
    ]
    assert (runs["median_epoch_s"] > 0).all() and (runs["peak_rss_mib"] > 0).all()
    # The extra size is a different model: fewer parameters than the default.
    params = runs.set_index(["model", "budget"])["n_params"]
    assert params[("modtt-tt", "small")] < params[("modtt-tt", "default")]
    # MODTT's sample speed is measured; totalVI has no conditional sample().
    cells = runs.set_index(["model", "budget"])["sample_cells_per_s"]
    assert cells[("modtt-tt", "default")] > 0 and np.isnan(cells[("totalvi", "default")])
    assert summary.loc[("totalvi", "default"), "median_epoch_s_ratio_to_totalvi"] == 1.0


def test_speed_summary_takes_medians_and_ratios():
    runs = pd.DataFrame(
        {
            "model": ["a", "a", "a", "totalvi", "totalvi", "totalvi"],
            "budget": "default",
            "repeat": [0, 1, 2, 0, 1, 2],
            "n_params": [10, 10, 10, 100, 100, 100],
            "median_epoch_s": [1.0, 9.0, 2.0, 4.0, 4.0, 40.0],
            "peak_rss_mib": [50.0, 60.0, 70.0, 100.0, 100.0, 100.0],
            "data_rss_mib": 10.0,
            "training_rss_increase_mib": [5.0, 6.0, 7.0, 10.0, 10.0, 10.0],
            "sample_cells_per_s": [1000.0, 2000.0, 3000.0, np.nan, np.nan, np.nan],
        }
    )
    summary = summarize_speed(runs)
    assert summary.loc[("a", "default"), "median_epoch_s"] == 2.0  # median, not mean
    assert summary.loc[("a", "default"), "median_epoch_s_ratio_to_totalvi"] == 0.5
    assert summary.loc[("a", "default"), "peak_rss_mib_ratio_to_totalvi"] == 0.6
    table = speed_table(pd.concat({"hvg2000": summary}, names=["features"]))
    assert "| hvg2000 | a | default | 10 | 2.000 | 0.50 | 6 | 0.60 | 2,000 |" in table
    assert "| hvg2000 | totalvi | default | 100 | 4.000 | 1.00 | 10 | 1.00 | — |" in table


def test_cli_speed_task_settings():
    args = _parser().parse_args(
        ["--task", "speed", "--repeats", "5", "--timed-epochs", "4", "--feature-sets", "whole"]
    )
    assert (args.task, args.repeats, args.timed_epochs, args.feature_sets) == (
        "speed",
        5,
        4,
        "whole",
    )
    assert _parser().parse_args([]).task == "generation"

"""Sharing MODTT through scvi-hub, offline: a local model folder and HubModel's round trip."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
import requests
import scipy.sparse as sp
import scvi
from conftest import MODULES_KEY, PROTEIN_MOD, RNA_MOD
from scvi.hub import HubModel

from scmodtt import MODTT
from scmodtt.model import read_hub_model, to_hub_model

METADATA = "_scvi_required_metadata.json"
METRICS = {"MODTT": {"tstr_f1": 0.91234, "cond_r": 0.4}, "totalVI": {"tstr_f1": 0.85}}


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@pytest.fixture(scope="module")
def hub_dir(trained_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "modtt"
    to_hub_model(trained_model, path, description="A test MODTT.", metrics=METRICS)
    return path


@pytest.fixture
def offline_urls(monkeypatch):
    """scvi-tools requests every training-data URL it validates: answer as if offline."""

    def refuse(*args, **kwargs):
        raise requests.ConnectionError("offline test")

    monkeypatch.setattr(requests, "get", refuse)


def test_hub_model_round_trip(trained_model, hub_dir):
    assert sorted(p.name for p in hub_dir.iterdir()) == sorted(
        ["model.pt", "mdata.h5mu", METADATA, "README.md", "metrics.json"]
    )
    loaded = HubModel(str(hub_dir)).model  # scvi-tools' own loader, no scmodtt code path
    assert type(loaded) is MODTT
    assert loaded is not trained_model and loaded.is_flow_prior_fitted
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), trained_model.get_latent_representation()
    )
    original = trained_model.sample(n_per_label=7, seed=11)
    reloaded = loaded.sample(n_per_label=7, seed=11)
    for mod in (RNA_MOD, PROTEIN_MOD):
        np.testing.assert_array_equal(_dense(original[mod].X), _dense(reloaded[mod].X))
    pd.testing.assert_frame_equal(original.obs, reloaded.obs)
    # The Gaussian label prior (moment-matched buffers) came back too.
    np.testing.assert_array_equal(
        _dense(trained_model.sample(n_per_label=3, seed=2, prior="gaussian")[RNA_MOD].X),
        _dense(loaded.sample(n_per_label=3, seed=2, prior="gaussian")[RNA_MOD].X),
    )


def test_hub_metadata_fields(hub_dir):
    stored = json.loads((hub_dir / METADATA).read_text())
    assert stored == {
        "scvi_version": scvi.__version__,
        "anndata_version": version("anndata"),
        "model_cls_name": "MODTT",
        "training_data_url": None,
        "model_parent_module": "scmodtt",
    }
    hub_model = read_hub_model(hub_dir)
    assert hub_model.metadata.model_parent_module == "scmodtt"
    assert json.loads((hub_dir / "metrics.json").read_text()) == METRICS


def test_model_card_describes_data_modules_and_metrics(trained_model, hub_dir):
    card = HubModel(str(hub_dir)).model_card
    assert card.data.license == "cc-by-4.0" and card.data.library_name == "scvi-tools"
    assert {"model_cls_name:MODTT", "modality:protein", "annotated:True"} <= set(card.data.tags)
    text = card.content
    labels = trained_model.adata.obs["labels"].value_counts().sort_index()
    expected_rows = [
        "| cells | 400 |",
        f"| genes | 100 (modality `{RNA_MOD}`, `.X`) |",
        f"| ADTs (proteins) | 100 (modality `{PROTEIN_MOD}`, `.X`) |",
        "| labels | 3 in `labels`: "
        + ", ".join(f"{name} ({count})" for name, count in labels.items())
        + " |",
        "| batches | 2 in `batch`: batch_0 (200), batch_1 (200) |",
        "| RNA modules | 5, 20 features each |",
        "| protein modules | 3, 33–34 features (median 33) |",
        "| coupling | tt (block Tensor-Train) |",
        "| tt_rank | 8 |",
        "| module_dim | 3 |",
        "| n_latent | 8 |",
        f"| total (autoencoder) | {int(trained_model.parameter_counts()['total']):,} |",
        "| metric | MODTT | totalVI |",
        "| tstr_f1 | 0.9123 | 0.85 |",
        "| cond_r | 0.4 |  |",
        "A test MODTT.",
    ]
    for row in expected_rows:
        assert row in text, row


@pytest.mark.parametrize(
    "field", ["model_cls_name", "model_parent_module", "scvi_version", "anndata_version"]
)
def test_missing_metadata_field_is_named_with_its_fix(hub_dir, tmp_path, field):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in (METADATA, "README.md"):
        (folder / name).write_bytes((hub_dir / name).read_bytes())
    (folder / "model.pt").symlink_to(hub_dir / "model.pt")
    stored = json.loads((folder / METADATA).read_text())
    expected = stored[field]
    del stored[field]
    (folder / METADATA).write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=rf"no '{field}' field.*\"{field}\": \"{expected}\""):
        read_hub_model(folder)


def test_wrong_metadata_is_reported(hub_dir, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "README.md").write_bytes((hub_dir / "README.md").read_bytes())
    stored = json.loads((hub_dir / METADATA).read_text())
    (folder / METADATA).write_text(json.dumps({**stored, "model_parent_module": "scvi.model"}))
    with pytest.raises(ValueError, match=r"'MODTT' in module 'scvi.model', which has no such"):
        read_hub_model(folder)
    (folder / METADATA).write_text(json.dumps({**stored, "n_epochs": 3}))
    with pytest.raises(ValueError, match=r"does not know: \['n_epochs'\]"):
        read_hub_model(folder)
    with pytest.raises(FileNotFoundError, match="no metadata file"):
        read_hub_model(hub_dir.parent)


def test_hub_model_without_data(trained_model, mdata, setup_kwargs, tmp_path, offline_urls):
    url = "https://example.org/reapseq.h5mu"
    path = tmp_path / "modtt"
    hub_model = to_hub_model(trained_model, path, save_data=False, training_data_url=url)
    assert not (path / "mdata.h5mu").exists() and not (path / "metrics.json").exists()
    assert hub_model.metadata.training_data_url == url
    assert "not saved with the model" in hub_model.model_card.content
    assert f"**Training data url**: {url}" in hub_model.model_card.content
    # The data need not carry the module tables: they are stored with the model.
    for mod in (RNA_MOD, PROTEIN_MOD):
        del mdata[mod].varm[MODULES_KEY]
    loaded = read_hub_model(path, adata=mdata).model
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), trained_model.get_latent_representation()
    )


def test_to_hub_model_refuses_bad_input(trained_model, mdata, setup_kwargs, tmp_path):
    MODTT.setup_mudata(mdata, **setup_kwargs)
    with pytest.raises(ValueError, match=r"not trained: train it"):
        to_hub_model(MODTT(mdata, n_latent=4), tmp_path / "untrained")
    with pytest.raises(TypeError, match=r"Metric 'MODTT.cv' is a ndarray"):
        to_hub_model(trained_model, tmp_path / "bad", metrics={"MODTT": {"cv": np.ones(3)}})
    with pytest.raises(ValueError, match="Invalid URL format"):
        to_hub_model(trained_model, tmp_path / "bad", training_data_url="not a url")
    assert not (tmp_path / "bad").exists()  # checked before anything is written

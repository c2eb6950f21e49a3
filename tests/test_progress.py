"""Progress bars of the long steps: Ward clustering in find_modules and the flow prior's fit.

Both follow scvi-tools: shown at ``scvi.settings.verbosity`` INFO (the default), silenced by a
quieter verbosity, by ``progress=False`` and, for the flow fitted by ``train``, by
``enable_progress_bar=False``; drawn in ``scvi.settings.progress_bar_style`` on stdout, as
``scvi.utils.track`` draws them.
"""

from __future__ import annotations

import logging

import pytest
import scvi
from conftest import PROTEIN_MOD, RNA_MOD

import scmodtt
from scmodtt.pp import _find_modules, _ward

N_MODULES = {RNA_MOD: 4, PROTEIN_MOD: 3}


@pytest.fixture
def scvi_settings():
    """Restore scvi-tools' verbosity and bar style after the test."""
    verbosity, style = scvi.settings.verbosity, scvi.settings.progress_bar_style
    yield scvi.settings
    scvi.settings.verbosity, scvi.settings.progress_bar_style = verbosity, style


def _find_modules_output(mdata, capsys, **kwargs) -> str:
    capsys.readouterr()
    scmodtt.pp.find_modules(
        mdata, n_modules=N_MODULES, rna_mod=RNA_MOD, protein_mod=PROTEIN_MOD, **kwargs
    )
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_find_modules_bar_on_large_modalities(mdata, capsys, monkeypatch, scvi_settings):
    scvi_settings.verbosity = logging.INFO
    n_genes = mdata[RNA_MOD].n_vars
    # Small Gram blocks: several correlation steps; a threshold between the two modalities.
    monkeypatch.setattr(_ward, "_GRAM_BLOCK_ELEMENTS", 20 * n_genes)
    monkeypatch.setattr(_find_modules, "PROGRESS_MIN_FEATURES", n_genes)
    monkeypatch.setitem(mdata.mod, PROTEIN_MOD, mdata[PROTEIN_MOD][:, :20].copy())
    output = _find_modules_output(mdata, capsys)
    assert f"find_modules {RNA_MOD}: Ward linkage" in output
    assert f"{n_genes + 1}/{n_genes + 1}" in output  # the bar reaches its end
    assert f"find_modules {PROTEIN_MOD}" not in output  # 20 ADTs take no time: no bar
    with_bar = mdata[RNA_MOD].varm["modtt_modules"].copy()

    scvi_settings.verbosity = logging.WARNING
    assert _find_modules_output(mdata, capsys) == ""
    scvi_settings.verbosity = logging.INFO
    assert _find_modules_output(mdata, capsys, progress=False) == ""
    assert mdata[RNA_MOD].varm["modtt_modules"].equals(with_bar)


def test_find_modules_bar_on_request_and_in_rich_style(mdata, capsys, scvi_settings):
    assert _find_modules_output(mdata, capsys) == ""  # 100 genes: below the default threshold
    output = _find_modules_output(mdata, capsys, progress=True)
    assert f"find_modules {RNA_MOD}" in output and f"find_modules {PROTEIN_MOD}" in output
    scvi_settings.progress_bar_style = "rich"
    assert f"find_modules {RNA_MOD}" in _find_modules_output(mdata, capsys, progress=True)


def test_flow_prior_bar_follows_scvi_settings(mdata, setup_kwargs, capsys, scvi_settings):
    scmodtt.MODTT.setup_mudata(mdata, **setup_kwargs)
    model = scmodtt.MODTT(mdata, module_dim=3, n_latent=4, flow_n_hidden=16, flow_n_layers=1)
    fast = {"max_epochs": 1, "enable_model_summary": False, "flow_kwargs": {"max_epochs": 2}}
    scvi_settings.verbosity = logging.INFO
    capsys.readouterr()
    model.train(enable_progress_bar=False, **fast)
    assert "Flow prior" not in capsys.readouterr().out

    model.fit_flow_prior(max_epochs=2)
    output = capsys.readouterr().out
    assert "Flow prior" in output and "2/2" in output and "loss=" in output
    scvi_settings.verbosity = logging.WARNING
    model.fit_flow_prior(max_epochs=2)
    assert "Flow prior" not in capsys.readouterr().out
    model.fit_flow_prior(max_epochs=2, progress=True)
    assert "Flow prior" in capsys.readouterr().out

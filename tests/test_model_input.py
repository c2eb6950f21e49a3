"""MODTT's input checks: bad modalities, layers, values, module tables, labels and options are
refused with a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import MODALITIES, MODULES_KEY, PROTEIN_MOD, RNA_MOD

from scmodtt import MODTT


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _elbo_train(model) -> np.ndarray:
    return model.history["elbo_train"].to_numpy(dtype=np.float64).ravel()


def _setup(mdata, setup_kwargs, **overrides):
    MODTT.setup_mudata(mdata, **{**setup_kwargs, **overrides})
    return mdata


def _with_float_values(mdata, mod_name: str, value: float, n: int = 3):
    """Make ``mdata[mod_name].X`` float and set its first ``n`` entries of row 0 to ``value``."""
    values = _dense(mdata[mod_name].X).astype(np.float64)
    values[0, :n] = value
    mdata[mod_name].X = values
    return mdata


# --------------------------------------------------------------------------- bad input


def test_unknown_modality(mdata):
    with pytest.raises(KeyError, match=r"Modality 'adt' \(given for the protein"):
        MODTT.setup_mudata(mdata, modalities={"rna_layer": RNA_MOD, "protein_layer": "adt"})


def test_missing_layer(mdata):
    with pytest.raises(KeyError, match=rf"Layer 'counts' is not in modality '{RNA_MOD}'"):
        MODTT.setup_mudata(mdata, rna_layer="counts", modalities=dict(MODALITIES))


@pytest.mark.parametrize("mod_name", [RNA_MOD, PROTEIN_MOD])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_rejected(mdata, mod_name, value):
    _with_float_values(mdata, mod_name, value)
    with pytest.raises(ValueError, match=rf"Modality '{mod_name}' `.X` holds 3 NaN or infinite"):
        MODTT.setup_mudata(mdata, modalities=dict(MODALITIES))


@pytest.mark.parametrize(
    ("mod_name", "likelihood_kwarg", "count_likelihood"),
    [(RNA_MOD, "gene_likelihood", "zinb"), (PROTEIN_MOD, "protein_likelihood", "nbmixture")],
)
def test_non_integer_values_need_normal_likelihood(
    mdata, setup_kwargs, train_kwargs, mod_name, likelihood_kwarg, count_likelihood
):
    _with_float_values(mdata, mod_name, 2.5)
    _setup(mdata, setup_kwargs)
    with pytest.raises(ValueError, match=rf"Modality '{mod_name}' is not raw counts"):
        MODTT(mdata, **{likelihood_kwarg: count_likelihood})
    model = MODTT(mdata, **{likelihood_kwarg: "normal"})
    model.train(**{**train_kwargs, "max_epochs": 1})
    assert np.isfinite(_elbo_train(model)).all()


@pytest.mark.parametrize(
    ("mod_name", "likelihood_kwarg", "count_likelihood"),
    [(RNA_MOD, "gene_likelihood", "nb"), (PROTEIN_MOD, "protein_likelihood", "nb")],
)
def test_negative_values_rejected(
    mdata, setup_kwargs, mod_name, likelihood_kwarg, count_likelihood
):
    _with_float_values(mdata, mod_name, -2.0)
    _setup(mdata, setup_kwargs)
    with pytest.raises(ValueError, match=rf"Modality '{mod_name}' is not raw counts"):
        MODTT(mdata, **{likelihood_kwarg: count_likelihood})
    # The encoder normalizes with log1p / CLR, so negative values are refused for "normal" too
    # (they used to crash training with NaN).
    with pytest.raises(ValueError, match=rf"Modality '{mod_name}' has negative values"):
        MODTT(mdata, **{likelihood_kwarg: "normal"})


@pytest.mark.parametrize("mod_name", [RNA_MOD, PROTEIN_MOD])
def test_missing_module_table(mdata, setup_kwargs, mod_name):
    del mdata[mod_name].varm[MODULES_KEY]
    _setup(mdata, setup_kwargs)
    with pytest.raises(KeyError, match=rf"'{mod_name}' has no module membership.*find_modules"):
        MODTT(mdata)


def test_modules_key_not_in_varm(mdata, setup_kwargs):
    _setup(mdata, setup_kwargs, modules_key="my_modules")
    with pytest.raises(KeyError, match=r"\.varm\['my_modules'\].*find_modules"):
        MODTT(mdata)


def test_module_without_features(mdata, setup_kwargs):
    table = mdata[PROTEIN_MOD].varm[MODULES_KEY].copy()
    table["empty_module"] = False
    mdata[PROTEIN_MOD].varm[MODULES_KEY] = table
    _setup(mdata, setup_kwargs)
    with pytest.raises(
        ValueError, match=r"1 module\(s\) .* contain no features: \['empty_module'\]"
    ):
        MODTT(mdata)


def test_missing_labels(mdata, setup_kwargs):
    mdata.obs.loc[mdata.obs_names[:4], "labels"] = np.nan
    with pytest.raises(ValueError, match=r"4 cell\(s\) have no label.*'labels'"):
        _setup(mdata, setup_kwargs)


def test_labels_key_not_a_column(mdata, setup_kwargs):
    with pytest.raises(KeyError, match="`labels_key='cell_type'` is not a column"):
        _setup(mdata, setup_kwargs, labels_key="cell_type")


def test_setup_anndata_points_to_setup_mudata(mdata):
    with pytest.raises(NotImplementedError, match="setup_mudata"):
        MODTT.setup_anndata(mdata[RNA_MOD])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "transformer"}, "`architecture` must be one of"),
        ({"coupling": "cp"}, "`coupling` must be one of"),
        ({"gene_likelihood": "poisson"}, "`gene_likelihood` must be one of"),
        ({"protein_likelihood": "zinb"}, "`protein_likelihood` must be one of"),
    ],
)
def test_unknown_option_names(mdata, setup_kwargs, kwargs, message):
    _setup(mdata, setup_kwargs)
    value = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=rf"{message} .*got '{value}'"):
        MODTT(mdata, **kwargs)

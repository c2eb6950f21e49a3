"""The benchmark's model list and its latent protocols, on ``tiny_cite``.

Every latent model (the MODTT architectures, the flat model, scVI, totalVI) is trained once per
module for two epochs on seed 0's split and sampled under both latent protocols directly;
:data:`scmodtt.benchmark.MODELS` is checked to be the one list of models that the run loop, the
report and the command line read. The run loop end to end is in ``test_benchmark.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
from _benchmark_common import (
    FLOW_EPOCHS,
    LABELS_KEY,
    LATENT_MODELS,
    LATENT_PROTOCOLS,
    MAX_EPOCHS,
    SIZED,
    fit_with_modules,
    load_seed_context,
)

import scmodtt
from scmodtt.benchmark import DEFAULT_MODELS, PROTOCOLS
from scmodtt.benchmark import _run as benchmark_run
from scmodtt.benchmark import _summary as benchmark_summary
from scmodtt.benchmark import _zoo as benchmark_zoo
from scmodtt.benchmark._cli import _parser
from scmodtt.benchmark._protocols import GenerationRequest, _training_libraries
from scmodtt.benchmark._timing import EpochTimer
from scmodtt.benchmark._zoo import build_model


@pytest.fixture(scope="module")
def seed_context():
    """Seed 0's split, features and Ward modules of ``tiny_cite``, as :func:`run` builds them."""
    return load_seed_context()


# ---------------------------------------------------------------------- latent protocols
@pytest.fixture(scope="module", params=LATENT_MODELS)
def latent_model(request, seed_context):
    """``(name, model)``: one latent model trained on seed 0's split (two epochs, a short flow)."""
    name = request.param
    parsed = benchmark_run.BenchmarkModel.parse(name)
    scvi.settings.seed = 0
    model = build_model(name, fit_with_modules(seed_context), labels_key=LABELS_KEY)
    benchmark_run._train(model, parsed, seed_context, MAX_EPOCHS, EpochTimer(), FLOW_EPOCHS)
    return name, model


def _request(latent_model, context, seed: int) -> GenerationRequest:
    name, model = latent_model
    return GenerationRequest(
        context.train,
        LABELS_KEY,
        context.label_counts,
        seed,
        model,
        benchmark_zoo.MODELS[name].family,
        context.split_in_fit.train,
        FLOW_EPOCHS,
    )


def _counts(synthetic) -> dict[str, np.ndarray]:
    return {modality: _dense(synthetic[modality].X) for modality in ("rna", "prot")}


@pytest.mark.parametrize("protocol", LATENT_PROTOCOLS)
def test_latent_protocols_for_every_latent_model(latent_model, seed_context, protocol):
    """Every latent model under both latent protocols: the test set's label counts, finite
    non-negative counts of every feature, the same cells for the same seed, others for another."""
    name, _ = latent_model
    assert protocol in benchmark_zoo.MODELS[name].protocols
    generate = PROTOCOLS[protocol].generate
    first, again, other = (
        generate(_request(latent_model, seed_context, seed)) for seed in (0, 0, 1)
    )
    counts = first.obs[LABELS_KEY].astype(str).value_counts().sort_index()
    pd.testing.assert_series_equal(
        counts, seed_context.label_counts, check_names=False, check_index_type=False
    )
    first, again, other = (_counts(cells) for cells in (first, again, other))
    for modality, values in first.items():
        assert values.shape == (
            seed_context.label_counts.sum(),
            seed_context.train[modality].n_vars,
        )
        assert np.isfinite(values).all() and (values >= 0).all(), modality
        np.testing.assert_array_equal(values, again[modality])
    assert any(not np.array_equal(first[m], other[m]) for m in first)


def test_latent_libraries_are_what_each_decoder_reads(latent_model, seed_context):
    """The library columns drawn for a decoder are the training cells' own, as the model reads
    them: scVI's the total of RNA and ADT counts (it is set up on both), totalVI's the RNA total,
    MODTT's its three library statistics."""
    name, model = latent_model
    request = _request(latent_model, seed_context, 0)
    libraries = _training_libraries(request)
    if request.family == "modtt":
        loader = model._make_data_loader(
            adata=model.adata, indices=request.train_indices, batch_size=len(request.train_indices)
        )
        expected = model.module.library_statistics(next(iter(loader))).numpy()
    else:
        size = model.get_latent_library_size(indices=request.train_indices, give_mean=False)
        expected = np.log(size)
    np.testing.assert_allclose(libraries, expected, rtol=1e-5, err_msg=name)


# ---------------------------------------------------------------------- one model list
def test_model_specs_are_the_one_list():
    """The run's defaults, the report's order, the CLI's help and the budgets all read MODELS."""
    specs = benchmark_zoo.MODELS
    assert DEFAULT_MODELS == tuple(specs)
    assert benchmark_summary.MODEL_ORDER == tuple(specs)
    assert benchmark_summary.PROTOCOL_ORDER == tuple(PROTOCOLS)
    assert benchmark_summary.PROTOCOL_DESCRIPTIONS == {
        name: protocol.description for name, protocol in PROTOCOLS.items()
    }
    assert set(benchmark_summary.PROTOCOL_COLOURS) == set(PROTOCOLS)
    assert all(set(spec.protocols) <= set(PROTOCOLS) for spec in specs.values())
    assert [n for n, spec in specs.items() if "latent_flow" in spec.protocols] == list(
        LATENT_MODELS
    )
    assert {n: spec.budget_variant for n, spec in specs.items() if spec.sized} == SIZED
    assert [n for n, spec in specs.items() if not spec.trained] == ["linear", "oracle"]
    epilog, models_help = _models_help()
    for name, spec in specs.items():
        assert f"{name} ({spec.description}; protocols {', '.join(spec.protocols)})" in epilog
    assert f"default {','.join(specs)}" in models_help


def _models_help() -> tuple[str, str]:
    """The command line's epilog (the model list) and the help of ``--models``."""
    parser = _parser()
    (models,) = [a for a in parser._actions if "--models" in a.option_strings]
    return parser.epilog, models.help


def test_a_new_model_spec_is_all_a_model_needs(monkeypatch):
    """A model added to MODELS is known to the run loop and the CLI's help, nothing else edited."""
    spec = benchmark_zoo.ModelSpec("resampler", "baseline", "a test generator", ("oracle",))
    monkeypatch.setitem(benchmark_zoo.MODELS, spec.name, spec)
    parsed = benchmark_run.BenchmarkModel.parse("resampler")
    assert parsed.spec is spec and parsed.family == "baseline" and not parsed.sized
    epilog, _ = _models_help()
    assert "resampler (a test generator; protocols oracle)" in epilog
    with pytest.raises(ValueError, match="Unknown trained model 'resampler'"):
        build_model("resampler", scmodtt.datasets.tiny_cite())


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)

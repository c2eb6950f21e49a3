"""The benchmark loop: datasets × seeds × models × budgets → tidy results, resumable."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
from mudata import MuData
from tqdm.auto import tqdm

from .. import metrics
from ..metrics._fidelity import check_min_cells
from ._budget import BudgetSolver, parse_budget
from ._data import (
    MIN_CELLS_FOR_SPLIT,
    check_labels_for_split,
    drop_rare_labels,
    exclude_cells_with_labels,
    load_benchmark_data,
)
from ._protocols import PROTOCOLS, GenerationRequest
from ._records import ResultsFile
from ._seed import SeedContext, use_modules
from ._timing import EpochTimer, PeakMemory
from ._zoo import (
    MODELS,
    MODULE_METHODS,
    ModelSpec,
    build_model,
    module_method_models,
    n_parameters,
)

logger = logging.getLogger(__name__)

#: Every model of :data:`~scmodtt.benchmark.MODELS`, in report order.
DEFAULT_MODELS = tuple(MODELS)
DEFAULT_BUDGET = "default"


@dataclass(frozen=True)
class BenchmarkModel:
    """A model name as the benchmark reads it.

    For example ``"modtt-tt"``, ``"modtt-dense:random"`` or ``"oracle"``.
    """

    name: str
    base: str
    module_method: str = "ward"

    @classmethod
    def parse(cls, name: str) -> BenchmarkModel:
        base, _, method = name.partition(":")
        if base not in MODELS:
            raise ValueError(
                f"Unknown model {name!r}; the benchmark knows {list(MODELS)} "
                f"({'/'.join(module_method_models())} may end in ':random' or ':hallmark')."
            )
        if method and (not MODELS[base].module_methods or method not in MODULE_METHODS):
            raise ValueError(
                f"Model {name!r}: only {'/'.join(module_method_models())} take a module method, "
                f"one of {MODULE_METHODS}."
            )
        return cls(name, base, method or MODULE_METHODS[0])

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.base]

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def sized(self) -> bool:
        return self.spec.sized


def run(
    data: str | Path = "reapseq_pbmc",
    models: Sequence[str] = DEFAULT_MODELS,
    seeds: int | Sequence[int] = 3,
    budgets: Sequence[str | int] | None = None,
    out: str | Path = "results",
    labels_key: str = "cell_type",
    batch_key: str | None = None,
    max_epochs: int | None = None,
    flow_max_epochs: int | None = None,
    n_top_genes: int | None = 2000,
    n_modules: dict[str, int] | None = None,
    min_cells_per_label: int | None = None,
    exclude_labels: Sequence[str] = (),
    metric_min_cells: int = 20,
    gene_likelihood: str = "nb",
    protein_likelihood: str = "nb",
    progress: bool = True,
) -> pd.DataFrame:
    """Benchmark MODTT against flat, scVI, totalVI, linear and oracle generators on one dataset.

    For every seed: a stratified 80/20 train/test split with 10% of train as validation; features
    (``n_top_genes`` highly variable genes of the training cells plus every gene paired with an
    ADT; all genes detected in ≥ 10 training cells when ``n_top_genes`` is ``None``) and modules
    from the training cells only; every model trained on the training cells with early stopping on
    the validation cells; synthetic cells generated with the test set's label counts under each
    protocol; every metric of :func:`scmodtt.metrics.evaluate` against the test cells.

    Parameters
    ----------
    data
        Bundled dataset name (a loader of :mod:`scmodtt.datasets`, e.g. ``"reapseq_pbmc"``) or
        ``.h5mu`` path with raw counts in ``rna`` and ``prot``.
    models
        Names of :data:`~scmodtt.benchmark.MODELS` (``modtt-tt``, ``modtt-dense``, ``flat``,
        ``scvi``, ``totalvi``, ``linear``, ``oracle``); ``modtt-tt`` and ``modtt-dense`` may end in
        ``:random`` or ``:hallmark`` for the module ablations. Each is scored under the protocols
        its :class:`~scmodtt.benchmark._zoo.ModelSpec` names.
    seeds
        Number of seeds (``0 … n-1``) or the seeds themselves.
    budgets
        Parameter budgets (``"60k"``, ``"1m"``…) for MODTT and flat; ``None`` runs their defaults.
    out
        Output folder; ``results.csv`` there is appended to and finished runs are skipped.
    labels_key, batch_key
        Columns of ``.obs`` (of the MuData or a modality) with cell types and batches.
    max_epochs
        Training cap for every model (``None``: each model's own default).
    flow_max_epochs
        Epochs of every conditional flow prior: MODTT's own (its second training stage) and the
        one the ``latent_flow`` protocol fits to each latent model (``None``: MODTT's default
        schedule of about 4,000 optimiser steps for both).
    n_top_genes
        Highly variable genes to keep; ``None`` for the whole transcriptome.
    n_modules
        Modules per modality for Ward/random (default ``{"rna": 50, "prot": 20}``).
    min_cells_per_label
        Drop labels with fewer cells (reported in the metadata); ``None`` refuses such labels.
    exclude_labels
        Labels whose cells are left out (e.g. ``"doublet-like"``), reported in the metadata.
    metric_min_cells
        Fewest cells of a type in both real test and synthetic sets for the per-type metrics.
    gene_likelihood, protein_likelihood
        MODTT likelihoods.
    progress
        Show a progress bar.

    Returns
    -------
    All rows of ``out/results.csv``:
    ``dataset, model, protocol, seed, budget, n_params, metric, value``.

    """
    parsed = [BenchmarkModel.parse(name) for name in models]
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    budget_list = [DEFAULT_BUDGET] if not budgets else [str(b) for b in budgets]
    targets = {b: parse_budget(b) for b in budget_list if b != DEFAULT_BUDGET}
    name, mdata = load_benchmark_data(data, labels_key, batch_key)
    dropped = {}
    if exclude_labels:
        mdata, dropped = exclude_cells_with_labels(mdata, labels_key, exclude_labels)
    if min_cells_per_label is not None:
        mdata, rare = drop_rare_labels(mdata, labels_key, min_cells_per_label)
        dropped.update(rare)
    check_labels_for_split(
        mdata.obs[labels_key], max(min_cells_per_label or 0, MIN_CELLS_FOR_SPLIT)
    )
    # Checked before any training, not when the first model is evaluated.
    check_min_cells(metric_min_cells, name="metric_min_cells")

    out = Path(out)
    results = ResultsFile(out / "results.csv")
    runs = [
        (seed, model, budget)
        for seed in seed_list
        for model in parsed
        for budget in (budget_list if model.sized else [DEFAULT_BUDGET])
    ]
    todo = [r for r in runs if not results.done(name, r[1].name, r[0], r[2])]
    run_log = []
    bar = tqdm(total=len(todo), desc=f"benchmark {name}", disable=not progress)
    for seed in seed_list:
        seed_runs = [r for r in todo if r[0] == seed]
        if not seed_runs:
            continue
        context = SeedContext.build(
            mdata,
            name,
            labels_key,
            batch_key,
            seed,
            n_top_genes,
            n_modules,
            {m.module_method for _, m, _ in seed_runs if m.spec.uses_modules},
            out / "synthetic" if seed == seed_list[0] else None,
            budget_list[0],
        )
        _save_real_embedding(context)
        likelihoods = {"gene_likelihood": gene_likelihood, "protein_likelihood": protein_likelihood}
        sizes, unreachable = _sizes_for_budgets(context, parsed, targets, likelihoods)
        for _, model, budget in seed_runs:
            bar.set_postfix_str(f"seed {seed} {model.name} {budget}")
            if (model.name, budget) in unreachable:
                logger.warning(unreachable[model.name, budget])
                run_log.append(
                    {
                        "seed": seed,
                        "model": model.name,
                        "budget": budget,
                        "skipped": True,
                        "reason": unreachable[model.name, budget],
                    }
                )
                bar.update()
                continue
            rows, info = _run_one(
                context,
                model,
                budget,
                sizes.get((model.name, budget)),
                max_epochs,
                flow_max_epochs,
                likelihoods,
                metric_min_cells,
            )
            results.append(rows)
            run_log.append(info)
            bar.update()
    bar.close()
    settings = {
        "labels_key": labels_key,
        "batch_key": batch_key,
        "max_epochs": max_epochs,
        "flow_max_epochs": flow_max_epochs,
        "n_top_genes": n_top_genes,
        "n_modules": n_modules,
        "min_cells_per_label": min_cells_per_label,
        "exclude_labels": list(exclude_labels),
        "metric_min_cells": metric_min_cells,
        "gene_likelihood": gene_likelihood,
        "protein_likelihood": protein_likelihood,
    }
    _write_metadata(out, name, data, parsed, seed_list, budget_list, settings, dropped, run_log)
    return results.read()


# ---------------------------------------------------------------------- one run
def _run_one(
    context: SeedContext,
    model: BenchmarkModel,
    budget: str,
    size: dict | None,
    max_epochs,
    flow_max_epochs,
    likelihoods: dict,
    metric_min_cells,
):
    seed, labels_key = context.seed, context.labels_key
    scvi.settings.seed = seed
    info = {"seed": seed, "model": model.name, "budget": budget}
    trained = None
    n_params = 0
    spec = model.spec
    if spec.trained:
        fit = context.fit.copy()
        kwargs = {**{k: likelihoods[k] for k in spec.settings}, **(size or {})}
        if spec.uses_modules:
            use_modules(fit, model.module_method)
        trained = build_model(
            model.base, fit, labels_key=labels_key, batch_key=context.batch_key, **kwargs
        )
        n_params = n_parameters(trained)
        timer = EpochTimer()
        start = time.perf_counter()
        with PeakMemory() as memory:
            _train(trained, model, context, max_epochs, timer, flow_max_epochs)
        info.update(
            train_seconds=time.perf_counter() - start,
            epochs=len(timer.seconds),
            median_epoch_seconds=float(np.median(timer.seconds)) if timer.seconds else float("nan"),
            peak_memory_increase_mib=memory.increase_mib,
            n_params=n_params,
            config={k: v for k, v in kwargs.items() if k in ("module_dim", "tt_rank", "n_hidden")},
        )
    rows = []
    request = GenerationRequest(
        context.train,
        labels_key,
        context.label_counts,
        seed,
        trained,
        spec.family,
        context.split_in_fit.train,
        flow_max_epochs,
    )
    for protocol in spec.protocols:
        start = time.perf_counter()
        synthetic = PROTOCOLS[protocol].generate(request)
        seconds = time.perf_counter() - start
        scores = context.score(synthetic, metric_min_cells)
        scores = scores[["metric", "value"]].copy()
        extra = {"sample_cells_per_s": synthetic.n_obs / seconds}
        if trained is not None:
            extra.update(
                {
                    k: info[k]
                    for k in (
                        "train_seconds",
                        "epochs",
                        "median_epoch_seconds",
                        "peak_memory_increase_mib",
                    )
                }
            )
        scores = pd.concat(
            [scores, pd.DataFrame({"metric": list(extra), "value": list(extra.values())})]
        )
        scores = scores.assign(
            dataset=context.dataset,
            model=model.name,
            protocol=protocol,
            seed=seed,
            budget=budget,
            n_params=n_params,
        )
        rows.append(scores)
        _save_embedding(context, model, protocol, budget, synthetic)
    return pd.concat(rows, ignore_index=True), info


def _sizes_for_budgets(
    context: SeedContext,
    models: Sequence[BenchmarkModel],
    targets: dict[str, int],
    likelihoods: dict,
) -> tuple[dict, dict]:
    """Size of every (sized model, budget) pair on this seed's data, and the unreachable pairs.

    Dense coupling has one size knob (``module_dim``) and moves in coarse steps, so some budgets
    that TT and flat reach exactly are out of its ±10% band: those runs are skipped and reported
    rather than run off-budget. A budget that no requested architecture reaches is an error.

    Returns
    -------
    ``{(model, budget): size kwargs}`` and ``{(model, budget): reason}``.

    """
    sized = [m for m in models if m.sized]
    if not sized or not targets:
        return {}, {}
    solvers = {}
    for method in sorted({m.module_method for m in sized}):
        probe_data = context.fit.copy()
        use_modules(probe_data, method)
        probe = build_model(
            module_method_models()[0],
            probe_data,
            labels_key=context.labels_key,
            batch_key=context.batch_key,
            **likelihoods,
        )
        solvers[method] = BudgetSolver.from_model(probe)
    sizes, unreachable = {}, {}
    for budget, target in targets.items():
        for model in sized:
            try:
                sizes[model.name, budget] = solvers[model.module_method].solve(
                    model.spec.budget_variant, target
                )[0]
            except ValueError as error:
                reason = f"{model.name} at budget {budget} skipped: {error}"
                unreachable[model.name, budget] = reason
        if all((m.name, budget) in unreachable for m in sized):
            raise ValueError(
                f"No requested architecture reaches the budget {budget!r}: "
                + " ".join(unreachable[m.name, budget] for m in sized)
            )
    return sizes, unreachable


def _train(
    model,
    benchmark_model: BenchmarkModel,
    context: SeedContext,
    max_epochs,
    timer: EpochTimer,
    flow_max_epochs: int | None = None,
) -> None:
    """Train on the seed's training cells with early stopping on its validation cells."""
    indexing = [
        context.split_in_fit.train,
        context.split_in_fit.validation,
        np.array([], dtype=np.int64),
    ]
    benchmark_model.spec.train(
        model,
        indexing,
        flow_max_epochs,
        max_epochs=max_epochs,
        enable_progress_bar=False,
        callbacks=[timer],
    )


def _save_real_embedding(context: SeedContext) -> None:
    """The real test cells in the same format as the saved synthetic cells."""
    if context.embeddings_folder is None:
        return
    context.embeddings_folder.mkdir(parents=True, exist_ok=True)
    space = metrics.shared_space(context.test)
    np.savez_compressed(
        context.embeddings_folder / f"{context.dataset}__real__test.npz",
        values=space.X.astype(np.float32),
        labels=context.test.obs[context.labels_key].to_numpy(dtype=str),
    )


def _save_embedding(
    context: SeedContext, model: BenchmarkModel, protocol: str, budget: str, synthetic: MuData
) -> None:
    """Keep the first seed's synthetic cells (shared space) for the report's UMAP figures.

    Sized models are kept at the first budget; the others have only their default size.
    """
    folder = context.embeddings_folder
    if folder is None or (model.sized and budget != context.embedding_budget):
        return
    folder.mkdir(parents=True, exist_ok=True)
    space = (
        synthetic if isinstance(synthetic, metrics.SharedSpace) else metrics.shared_space(synthetic)
    )
    np.savez_compressed(
        folder / f"{context.dataset}__{model.name.replace(':', '-')}__{protocol}.npz",
        values=space.X.astype(np.float32),
        labels=synthetic.obs[context.labels_key].to_numpy(dtype=str),
    )


def _write_metadata(
    out: Path, name, data, models, seeds, budgets, settings, dropped, run_log
) -> None:
    from importlib.metadata import version

    from ._timing import peak_rss_mib

    path = out / f"metadata_{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else {"runs": []}
    metadata = {
        "dataset": name,
        "data": str(data),
        "models": [m.name for m in models],
        "seeds": seeds,
        "budgets": budgets,
        **settings,
        "dropped_labels": dropped,
        "versions": {
            pkg: version(pkg)
            for pkg in (
                "scmodtt",
                "scvi-tools",
                "torch",
                "tensorly-torch",
                "scanpy",
                "anndata",
                "mudata",
                "scikit-learn",
            )
        },
        "process_peak_rss_mib": peak_rss_mib(),
        "runs": previous["runs"] + [run for run in run_log if run not in previous["runs"]],
    }
    path.write_text(json.dumps(metadata, indent=2, default=str))

"""Transfer benchmark: map a held-out batch onto a reference, transfer labels, impute proteins.

Per seed, one batch (or dataset) of a CITE-seq MuData is the query and the others (or those
named) the reference. The query's ADTs are hidden from every model (its cells are RNA-only) and
its labels removed; both are kept aside to score label transfer and protein imputation. A query
without labels (e.g. ECCITE-seq in :func:`~scmodtt.datasets.pbmc_panel`) is scored on imputation
and batch mixing only. Methods, all on the same genes, cells and seed:

- ``modtt_query``: a MODTT reference (trained with modality dropout) mapped onto by
  :meth:`~scmodtt.MODTT.load_query_data` (new batch columns only);
- ``modtt_query_adapter``: the same with a rank-``adapter_rank`` token adapter;
- ``modtt_retrained``: MODTT trained from scratch on reference + (RNA-only) query cells;
- ``totalvi_query``: totalVI's scArches query mapping, as scvi-tools' tutorial does it (weight
  decay and adversarial loss off), and totalVI's protein imputation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scvi
from mudata import MuData

from .. import pp
from ..model import MODTT
from ..model._query import UNKNOWN_LABEL
from ._data import exclude_cells_with_labels, load_benchmark_data, with_genes
from ._format import markdown_table
from ._seed import select_genes
from ._stats import t_interval, verdicts
from ._transfer_scores import (
    N_NEIGHBORS_LABELS,
    N_NEIGHBORS_LISI,
    _imputation_scores,
    _integration_scores,
    _label_f1,
)
from ._zoo import DENSE_PROTEIN_LAYER, PROTEIN_MOD, RNA_MOD

logger = logging.getLogger(__name__)

TRANSFER_METHODS = ("modtt_query", "modtt_query_adapter", "modtt_retrained", "totalvi_query")
TRANSFER_METRICS = (
    "label_f1",
    "ilisi",
    "clisi",
    "silhouette_label",
    "protein_pearson",
    "protein_spearman",
    "trained_fraction",
    "seconds",
)
#: The issue's targets: (method, baseline, metric, margin): method − baseline ≥ −margin.
TARGETS = (
    ("modtt_query", "modtt_retrained", "label_f1", 0.03),
    ("modtt_query_adapter", "modtt_retrained", "label_f1", 0.03),
    ("modtt_query", "totalvi_query", "protein_pearson", 0.0),
    ("modtt_query_adapter", "totalvi_query", "protein_pearson", 0.0),
    ("modtt_query", "totalvi_query", "ilisi", 0.0),
    ("modtt_query_adapter", "totalvi_query", "ilisi", 0.0),
    ("modtt_query", "totalvi_query", "clisi", 0.0),
    ("modtt_query_adapter", "totalvi_query", "clisi", 0.0),
)
#: Metrics that need the query's labels: NaN, and "not scored", for an unlabelled query.
LABEL_METRICS = ("label_f1", "clisi", "silhouette_label")
NOT_SCORED = "not scored: query unlabelled"


def transfer(
    data: str | Path = "reapseq_pbmc",
    labels_key: str = "cell_type",
    batch_key: str = "sample",
    query_batch: str | None = None,
    reference_batches: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 3,
    methods: Sequence[str] = TRANSFER_METHODS,
    exclude_labels: Sequence[str] = (),
    n_top_genes: int | None = 2000,
    protein_dropout: float = 0.5,
    adapter_rank: int = 4,
    max_epochs: int | None = None,
    query_epochs: int = 200,
    flow_max_epochs: int | None = None,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Run the transfer benchmark; return tidy results (one row per seed, method and metric).

    Parameters
    ----------
    data
        A bundled dataset name or an ``.h5mu`` path with ``rna`` and ``prot`` raw counts.
    labels_key, batch_key
        Cell types and batches (or datasets) in ``.obs``. Cells labelled ``"unknown"`` (or
        missing) count as unlabelled: reference ones train every model (MODTT learns an
        ``"unknown"`` label prior for them, as for any label; totalVI uses no labels) but are
        left out of the kNN classifier and of cLISI and the label silhouette; query ones are not
        scored on labels. A query without any label gets NaN for ``label_f1``, ``clisi`` and
        ``silhouette_label``, and the report says "not scored: query unlabelled"; so does
        ``label_f1`` when no query label is a reference label.
    query_batch
        The held-out batch; ``None`` takes the last category.
    reference_batches
        The batches the reference models train on; ``None``: every batch but the query. Cells
        of other batches are left out (e.g. reference ``["reapseq"]``, query ``"eccite"`` of
        the PBMC panel, PBMC5k unused). The reference needs labelled cells.
    seeds
        A number of seeds (``0 … n−1``) or the seeds themselves.
    methods
        Any of :data:`TRANSFER_METHODS`.
    exclude_labels
        Labels whose cells are dropped first (e.g. doublets).
    n_top_genes
        Highly variable genes of the reference cells (plus ADT-paired genes); ``None``: all
        detected genes.
    protein_dropout
        Modality dropout of the MODTT models (so that their encoder places RNA-only cells).
    adapter_rank
        Rank of ``modtt_query_adapter``'s token adapter.
    max_epochs
        Epoch cap of the reference models (``None``: each model's own schedule).
    query_epochs
        Epochs of every query mapping (scvi-tools' tutorial uses 200).
    flow_max_epochs
        Epochs of the MODTT models' flow prior (``None``: its default).
    out
        Folder for ``transfer_results.csv`` and ``transfer.md``.

    Examples
    --------
    >>> results = scmodtt.benchmark.transfer("bmmc_cite", batch_key="batch", seeds=1)
    >>> results.pivot_table(index="method", columns="metric", values="value")
    >>> panel = scmodtt.benchmark.transfer(
    ...     "pbmc_panel",
    ...     batch_key="dataset",
    ...     query_batch="eccite",
    ...     reference_batches=["reapseq"],
    ...     exclude_labels=["doublet-like", "low_quality"],
    ... )

    """
    unknown = sorted(set(methods) - set(TRANSFER_METHODS))
    if unknown:
        raise ValueError(f"Unknown transfer method(s) {unknown}; choose from {TRANSFER_METHODS}.")
    name, mdata = load_benchmark_data(data, labels_key, batch_key)
    labels = mdata.obs[labels_key]
    if labels.isna().any():  # missing labels are unknown ones, for the models and the scores
        mdata.obs[labels_key] = pd.Categorical(
            labels.astype(object).where(labels.notna(), UNKNOWN_LABEL).astype(str)
        )
    if exclude_labels:
        mdata, _ = exclude_cells_with_labels(mdata, labels_key, list(exclude_labels))
    batches = mdata.obs[batch_key].astype(str)
    if query_batch is None:
        query_batch = sorted(batches.unique())[-1]
    if query_batch not in set(batches):
        raise ValueError(
            f"No batch {query_batch!r} in {batch_key!r}; batches: {sorted(batches.unique())}."
        )
    reference_batches = _reference_batches(
        batches, labels_key, mdata, query_batch, reference_batches
    )
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    options = _Options(
        protein_dropout,
        adapter_rank,
        max_epochs,
        query_epochs,
        {} if flow_max_epochs is None else {"max_epochs": flow_max_epochs},
    )
    rows = []
    for seed in seeds:
        split = _TransferSplit.build(
            mdata, labels_key, batch_key, query_batch, reference_batches, n_top_genes, seed
        )
        for method in methods:
            started = time.perf_counter()
            scvi.settings.seed = seed
            outcome = _METHODS[method](split, options)
            scores = split.score(*outcome)
            scores["seconds"] = time.perf_counter() - started
            rows += [
                {
                    "dataset": name,
                    "query": query_batch,
                    "seed": seed,
                    "method": method,
                    "metric": metric,
                    "value": float(value),
                }  # fmt: skip
                for metric, value in scores.items()
            ]
            logger.info("%s seed %d %s: %s", name, seed, method, scores)
    results = pd.DataFrame(rows)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        results.to_csv(out / "transfer_results.csv", index=False)
        (out / "transfer.md").write_text(transfer_report(results, reference_batches))
    return results


def _reference_batches(batches, labels_key, mdata, query_batch, reference_batches) -> list[str]:
    """The reference batches, checked: known, not the query, with labelled cells."""
    known = sorted(batches.unique())
    if reference_batches is None:
        reference_batches = [batch for batch in known if batch != query_batch]
    reference_batches = [str(batch) for batch in reference_batches]
    unknown = sorted(set(reference_batches) - set(known))
    if unknown:
        raise ValueError(f"No reference batch {unknown} in the batches {known}.")
    if query_batch in reference_batches:
        raise ValueError(
            f"The query batch {query_batch!r} cannot also be a reference batch; reference "
            f"batches: {reference_batches}."
        )
    if not reference_batches:
        raise ValueError(f"No reference batch: {known} has only the query {query_batch!r}.")
    in_reference = batches.isin(reference_batches).to_numpy()
    labels = mdata.obs[labels_key].astype(str).to_numpy()
    if not (labels[in_reference] != UNKNOWN_LABEL).any():
        labelled = sorted(set(batches[labels != UNKNOWN_LABEL]))
        raise ValueError(
            f"The reference batches {reference_batches} have no labelled cell (all "
            f"{UNKNOWN_LABEL!r}), so no label can be transferred. Choose labelled reference "
            f"batches (`reference_batches=` / `--reference-batches`; labelled: {labelled}) or "
            "another query."
        )
    return reference_batches


@dataclass(frozen=True)
class _Options:
    """Training settings every method reads."""

    protein_dropout: float
    adapter_rank: int
    max_epochs: int | None
    query_epochs: int
    flow_kwargs: dict


class _TransferSplit:
    """One seed's reference and query cells on the reference's genes and modules."""

    def __init__(self, reference, query_rna, query_truth, labels_key, batch_key, query_batch):
        self.reference, self.query_rna, self.query_truth = reference, query_rna, query_truth
        self.labels_key, self.batch_key, self.query_batch = labels_key, batch_key, query_batch

    @classmethod
    def build(cls, mdata, labels_key, batch_key, query_batch, reference_batches, n_top_genes, seed):
        batches = mdata.obs[batch_key].astype(str)
        is_query = (batches == query_batch).to_numpy()
        reference = mdata[batches.isin(reference_batches).to_numpy()].copy()
        genes = select_genes(reference.copy(), n_top_genes)
        reference = with_genes(reference, genes)
        pp.find_modules(reference, seed=seed)
        query = with_genes(mdata[is_query].copy(), genes)
        # What the models see of the query: RNA and the batch, no ADTs, no labels.
        query_rna = MuData({RNA_MOD: query[RNA_MOD].copy()})
        query_rna.obs[batch_key] = query.obs[batch_key].astype(str).to_numpy()
        for frame in (reference.obs, query.obs):
            frame[batch_key] = frame[batch_key].astype(str)
        return cls(reference, query_rna, query, labels_key, batch_key, query_batch)

    def score(self, reference_latent, query_latent, imputed, trained_fraction) -> dict:
        """Label transfer, integration and imputation scores of one method.

        Unlabelled cells (``"unknown"``) neither train the classifier nor count in cLISI and the
        label silhouette; without labelled query cells those three are NaN.
        """
        reference_labels = self.reference.obs[self.labels_key].astype(str).to_numpy()
        query_labels = self.query_truth.obs[self.labels_key].astype(str).to_numpy()
        reference_known = reference_labels != UNKNOWN_LABEL
        query_known = query_labels != UNKNOWN_LABEL
        labels = np.concatenate([reference_labels, query_labels])
        # Without labelled query cells the biology scores would be the reference's alone: none.
        labelled = np.concatenate([reference_known, query_known]) & query_known.any()
        scores = {
            "label_f1": _label_f1(
                reference_latent[reference_known],
                reference_labels[reference_known],
                query_latent,
                query_labels,
            ),
            **_integration_scores(
                np.vstack([reference_latent, query_latent]),
                labels,
                np.concatenate(
                    [
                        self.reference.obs[self.batch_key].to_numpy(),
                        self.query_truth.obs[self.batch_key].to_numpy(),
                    ]
                ),
                labelled=labelled,
            ),
            **_imputation_scores(imputed, self.query_truth[PROTEIN_MOD].X),
        }
        if not query_known.any():
            logger.warning(
                "The query %r has no labels: %s not scored (NaN).",
                self.query_batch,
                ", ".join(LABEL_METRICS),
            )
            scores["label_f1"] = np.nan
        scores["trained_fraction"] = trained_fraction
        return scores


# ---------------------------------------------------------------------- methods
def _trained_modtt(mdata: MuData, split: _TransferSplit, options: _Options) -> MODTT:
    MODTT.setup_mudata(mdata, labels_key=split.labels_key, batch_key=split.batch_key)
    model = MODTT(mdata, protein_dropout=options.protein_dropout)
    model.train(
        max_epochs=options.max_epochs, enable_progress_bar=False, flow_kwargs=options.flow_kwargs
    )
    return model


def _modtt_query(split: _TransferSplit, options: _Options, rank: int = 0):
    reference = _trained_modtt(split.reference, split, options)
    query = MODTT.prepare_query_mudata(split.query_rna, reference)
    model = MODTT.load_query_data(query, reference, adapter_rank=rank)
    model.train(max_epochs=options.query_epochs, enable_progress_bar=False)
    return (
        reference.get_latent_representation(),
        model.get_latent_representation(),
        _modtt_imputed(model, query, split),
        model.trained_parameter_fraction,
    )


def _modtt_query_adapter(split: _TransferSplit, options: _Options):
    return _modtt_query(split, options, rank=options.adapter_rank)


def _modtt_retrained(split: _TransferSplit, options: _Options):
    query = MODTT.prepare_query_mudata(split.query_rna, _untrained_layout(split))
    model = _trained_modtt(_concatenate(split.reference, query, split), split, options)
    both = model.adata
    latent = model.get_latent_representation()
    n_reference = split.reference.n_obs
    query_cells = np.arange(n_reference, both.n_obs)
    return (
        latent[:n_reference],
        latent[n_reference:],
        _modtt_imputed(model, both, split, indices=query_cells),
        model.trained_parameter_fraction,
    )


def _modtt_imputed(model, mdata, split, indices=None) -> np.ndarray:
    reference_batches = sorted(split.reference.obs[split.batch_key].unique())
    _, protein = model.get_normalized_expression(
        mdata, indices=indices, transform_batch=reference_batches, return_numpy=True
    )
    return protein


def _untrained_layout(split: _TransferSplit) -> MODTT:
    """An untrained MODTT on the reference: the feature layout the retrained model shares."""
    MODTT.setup_mudata(split.reference, labels_key=split.labels_key, batch_key=split.batch_key)
    return MODTT(split.reference)


def _concatenate(reference: MuData, query: MuData, split: _TransferSplit) -> MuData:
    """Reference and prepared query cells in one MuData (query labels hidden as unknown)."""
    modalities = {}
    for mod_name in (RNA_MOD, PROTEIN_MOD):
        ref, qry = reference[mod_name], query[mod_name]
        modalities[mod_name] = ad.concat([ref, qry], join="outer", merge="first")
        modalities[mod_name].varm = ref.varm.copy()
    both = MuData(modalities)
    for column in (split.labels_key, split.batch_key):
        both.obs[column] = np.concatenate(
            [reference.obs[column].astype(str), query.obs[column].astype(str)]
        )
    return both


def _totalvi_query(split: _TransferSplit, options: _Options):
    reference = split.reference.copy()
    _dense_protein(reference)
    scvi.model.TOTALVI.setup_mudata(
        reference,
        protein_layer=DENSE_PROTEIN_LAYER,
        batch_key=split.batch_key,
        modalities={"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD},
    )
    reference_model = scvi.model.TOTALVI(reference)
    reference_model.train(max_epochs=options.max_epochs, enable_progress_bar=False)
    # totalVI's query needs the reference's ADTs: all-zero, which its protein batch mask hides.
    query = MuData(
        {
            RNA_MOD: split.query_rna[RNA_MOD].copy(),
            PROTEIN_MOD: _zero_adts(split.query_rna, reference[PROTEIN_MOD]),
        }
    )
    query.obs[split.batch_key] = split.query_rna.obs[split.batch_key].to_numpy()
    model = scvi.model.TOTALVI.load_query_data(query, reference_model)
    model.train(
        max_epochs=options.query_epochs,
        enable_progress_bar=False,
        plan_kwargs={"weight_decay": 0.0, "scale_adversarial_loss": 0.0},
    )
    reference_batches = sorted(split.reference.obs[split.batch_key].unique())
    _, protein = model.get_normalized_expression(
        query, transform_batch=reference_batches, n_samples=25, return_mean=True
    )
    trained = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.module.parameters())
    return (
        reference_model.get_latent_representation(),
        model.get_latent_representation(),
        np.asarray(protein),
        # An upper bound: scArches' hooks also zero the gradients of reference batch columns.
        trained / total,
    )


def _dense_protein(mdata: MuData) -> None:
    protein = mdata[PROTEIN_MOD]
    protein.layers[DENSE_PROTEIN_LAYER] = (
        protein.X.toarray() if sp.issparse(protein.X) else np.asarray(protein.X)
    )


def _zero_adts(query: MuData, reference_protein):
    zeros = np.zeros((query.n_obs, reference_protein.n_vars), dtype=np.float32)
    adts = ad.AnnData(
        X=sp.csr_matrix(zeros),
        obs=pd.DataFrame(index=query[RNA_MOD].obs_names),
        var=pd.DataFrame(index=reference_protein.var_names),
    )
    adts.layers[DENSE_PROTEIN_LAYER] = zeros
    return adts


_METHODS = {
    "modtt_query": _modtt_query,
    "modtt_query_adapter": _modtt_query_adapter,
    "modtt_retrained": _modtt_retrained,
    "totalvi_query": _totalvi_query,
}


# ---------------------------------------------------------------------- report
def transfer_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and seeds of every method's metrics."""
    grouped = results.groupby(["dataset", "query", "method", "metric"])["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def transfer_targets(results: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The issue's targets as paired per-seed differences with t-intervals and verdicts.

    A target on a label metric that is NaN for every seed (an unlabelled query) gets the verdict
    ``"not scored: query unlabelled"``, no interval and 0 seeds.
    """
    rows = []
    for method, baseline, metric, margin in TARGETS:
        subset = results[results["metric"] == metric]
        if not {method, baseline} <= set(subset["method"]):
            continue
        values = subset.pivot_table(
            index=["dataset", "seed"], columns="method", values="value", dropna=False
        )
        difference = (values[method] - values[baseline]).dropna()
        target = f"{method} − {baseline} on {metric} ≥ −{margin:g}"
        if difference.empty:
            reason = NOT_SCORED if metric in LABEL_METRICS else "not scored"
            rows.append(
                {
                    "target": target,
                    "mean": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "seeds": 0,
                    "verdict": reason,
                }  # fmt: skip
            )
            continue
        low, high = t_interval(difference.mean(), difference.std(), len(difference), confidence)
        # Met when the whole interval clears the margin, missed when it lies below it.
        verdict = verdicts(low + margin, high + margin, True).item()
        rows.append(
            {
                "target": target,
                "mean": difference.mean(),
                "ci_low": float(low),
                "ci_high": float(high),
                "seeds": len(difference),
                "verdict": {"better": "met", "worse": "missed"}.get(verdict, "not resolved"),
            }
        )
    return pd.DataFrame(rows)


def transfer_report(results: pd.DataFrame, reference_batches: Sequence[str] | None = None) -> str:
    """Markdown: protocol, a mean ± std table per method, and the targets.

    Metrics NaN for every seed (the label metrics of an unlabelled query) read "not scored";
    ``reference_batches``, when given, are named in the protocol.
    """
    summary = transfer_summary(results)
    summary["cell"] = [
        "not scored"
        if not np.isfinite(m)
        else (f"{m:.3f} ± {s:.3f}" if np.isfinite(s) else f"{m:.3f}")
        for m, s in zip(summary["mean"], summary["std"], strict=True)
    ]
    unscored = summary[summary["n"].eq(0) & summary["metric"].isin(LABEL_METRICS)]
    table = summary.pivot_table(
        index=["dataset", "query", "method"], columns="metric", values="cell", aggfunc="first"
    ).reset_index()
    table = table[[c for c in ["dataset", "query", "method", *TRANSFER_METRICS] if c in table]]
    seeds = sorted(int(seed) for seed in results["seed"].unique())
    lines = [
        "# Transfer benchmark",
        "",
        f"Protocol: the query batch is held out; its ADTs and labels are hidden from every model. "
        f"Seeds {seeds}; mean ± std over seeds. label_f1: macro F1 of a "
        f"{N_NEIGHBORS_LABELS}-NN classifier on the latent trained on reference cells; "
        "ilisi / clisi / silhouette_label: scib-metrics on the joint latent (reference + query, "
        f"{N_NEIGHBORS_LISI} neighbours); protein_pearson / protein_spearman: median over ADTs of "
        "the correlation between log1p imputed and log1p measured counts of query cells; "
        "trained_fraction: share of the network trained on the query (totalVI: an upper bound).",
        "",
        *(
            [f"Reference batches: {', '.join(map(str, reference_batches))}.", ""]
            if reference_batches is not None
            else []
        ),
        *(
            [
                f"{', '.join(sorted(set(unscored['metric'])))} of query "
                f"{', '.join(sorted(set(unscored['query'].astype(str))))}: {NOT_SCORED} "
                "(its ADTs are scored, its labels are missing).",
                "",
            ]
            if len(unscored)
            else []
        ),
        *markdown_table(table),
        "",
        "## Targets (paired per seed, 95% t-interval)",
        "",
    ]
    targets = transfer_targets(results)
    if len(targets):
        targets = targets.assign(
            interval=[
                f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(m) else "—"
                for m, lo, hi in zip(
                    targets["mean"], targets["ci_low"], targets["ci_high"], strict=True
                )
            ]
        )[["target", "interval", "seeds", "verdict"]]
        lines += markdown_table(targets)
    return "\n".join(lines) + "\n"

"""Transfer benchmark: map a held-out batch onto a reference, transfer labels, impute proteins.

Per seed, one batch (or dataset) of a CITE-seq MuData is the query and the others the reference.
The query's ADTs are hidden from every model (its cells are RNA-only) and its labels removed;
both are kept aside to score label transfer and protein imputation. Methods, all on the same
genes, cells and seed:

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
from scipy import stats
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from .. import pp
from ..model import MODTT
from ._data import exclude_cells_with_labels, load_benchmark_data, with_genes
from ._format import markdown_table
from ._seed import select_genes
from ._stats import t_interval, verdicts
from ._zoo import DENSE_PROTEIN_LAYER, PROTEIN_MOD, RNA_MOD

logger = logging.getLogger(__name__)

TRANSFER_METHODS = ("modtt_query", "modtt_query_adapter", "modtt_retrained", "totalvi_query")
#: Neighbours of the kNN label-transfer classifier and of the LISI graphs (scib-metrics' 90).
N_NEIGHBORS_LABELS, N_NEIGHBORS_LISI = 15, 90
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


def transfer(
    data: str | Path = "reapseq_pbmc",
    labels_key: str = "cell_type",
    batch_key: str = "sample",
    query_batch: str | None = None,
    seeds: int | Sequence[int] = 3,
    methods: Sequence[str] = TRANSFER_METHODS,
    exclude_labels: Sequence[str] = (),
    n_top_genes: int | None = 2000,
    protein_dropout: float = 0.25,
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
        Cell types and batches (or datasets) in ``.obs``.
    query_batch
        The held-out batch; ``None`` takes the last category.
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

    """
    unknown = sorted(set(methods) - set(TRANSFER_METHODS))
    if unknown:
        raise ValueError(f"Unknown transfer method(s) {unknown}; choose from {TRANSFER_METHODS}.")
    name, mdata = load_benchmark_data(data, labels_key, batch_key)
    if exclude_labels:
        mdata, _ = exclude_cells_with_labels(mdata, labels_key, list(exclude_labels))
    batches = mdata.obs[batch_key].astype(str)
    if query_batch is None:
        query_batch = sorted(batches.unique())[-1]
    if query_batch not in set(batches):
        raise ValueError(
            f"No batch {query_batch!r} in {batch_key!r}; batches: {sorted(batches.unique())}."
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
        split = _TransferSplit.build(mdata, labels_key, batch_key, query_batch, n_top_genes, seed)
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
        (out / "transfer.md").write_text(transfer_report(results))
    return results


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
    def build(cls, mdata, labels_key, batch_key, query_batch, n_top_genes, seed):
        is_query = (mdata.obs[batch_key].astype(str) == query_batch).to_numpy()
        reference = mdata[~is_query].copy()
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
        """Label transfer, integration and imputation scores of one method."""
        reference_labels = self.reference.obs[self.labels_key].astype(str).to_numpy()
        query_labels = self.query_truth.obs[self.labels_key].astype(str).to_numpy()
        classifier = KNeighborsClassifier(n_neighbors=N_NEIGHBORS_LABELS)
        classifier.fit(reference_latent, reference_labels)
        shared = np.isin(query_labels, reference_labels)
        predicted = classifier.predict(query_latent[shared])
        truth = query_labels[shared]
        scores = {
            "label_f1": f1_score(truth, predicted, labels=np.unique(truth), average="macro"),
            **_integration_scores(
                np.vstack([reference_latent, query_latent]),
                np.concatenate([reference_labels, query_labels]),
                np.concatenate(
                    [
                        self.reference.obs[self.batch_key].to_numpy(),
                        self.query_truth.obs[self.batch_key].to_numpy(),
                    ]
                ),
            ),
            **_imputation_scores(imputed, self.query_truth[PROTEIN_MOD].X),
        }
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


# ---------------------------------------------------------------------- scores
def _integration_scores(latent, labels, batches) -> dict:
    """scib-metrics' iLISI (batch mixing), cLISI and cell-type silhouette (biology)."""
    try:
        import scib_metrics
        from scib_metrics.nearest_neighbors import NeighborsResults
    except ImportError as error:  # an optional extra: it brings JAX
        raise ImportError(
            "The transfer benchmark scores integration with scib-metrics: "
            "`pip install -c constraints.txt 'scmodtt[transfer]'`."
        ) from error
    n_neighbors = min(N_NEIGHBORS_LISI, len(latent) - 1)
    # Exact neighbours with scikit-learn: these benchmarks have thousands of cells, not millions.
    distances, indices = NearestNeighbors(n_neighbors=n_neighbors).fit(latent).kneighbors(latent)
    neighbors = NeighborsResults(indices=indices, distances=distances)
    batch_codes = pd.factorize(batches)[0]
    label_codes = pd.factorize(labels)[0]
    return {
        "ilisi": float(scib_metrics.ilisi_knn(neighbors, batch_codes)),
        "clisi": float(scib_metrics.clisi_knn(neighbors, label_codes)),
        "silhouette_label": float(scib_metrics.silhouette_label(latent, label_codes)),
    }


def _imputation_scores(imputed: np.ndarray, measured) -> dict:
    """Median over ADTs of Pearson and Spearman between log1p imputed and measured counts."""
    measured = measured.toarray() if sp.issparse(measured) else np.asarray(measured)
    imputed, measured = np.log1p(np.asarray(imputed, dtype=float)), np.log1p(measured)
    varying = (measured.std(0) > 0) & (imputed.std(0) > 0)
    pearson = [stats.pearsonr(imputed[:, j], measured[:, j])[0] for j in np.flatnonzero(varying)]
    spearman = stats.spearmanr(imputed[:, varying], measured[:, varying]).statistic
    n = int(varying.sum())
    spearman = np.diag(spearman[:n, n:]) if n > 1 else np.atleast_1d(spearman)
    return {
        "protein_pearson": float(np.median(pearson)),
        "protein_spearman": float(np.median(spearman)),
    }


# ---------------------------------------------------------------------- report
def transfer_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and seeds of every method's metrics."""
    grouped = results.groupby(["dataset", "query", "method", "metric"])["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def transfer_targets(results: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The issue's targets as paired per-seed differences with t-intervals and verdicts."""
    rows = []
    for method, baseline, metric, margin in TARGETS:
        values = results[results["metric"] == metric].pivot_table(
            index=["dataset", "seed"], columns="method", values="value"
        )
        if method not in values or baseline not in values:
            continue
        difference = (values[method] - values[baseline]).dropna()
        low, high = t_interval(difference.mean(), difference.std(), len(difference), confidence)
        # Met when the whole interval clears the margin, missed when it lies below it.
        verdict = verdicts(low + margin, high + margin, True).item()
        rows.append(
            {
                "target": f"{method} − {baseline} on {metric} ≥ −{margin:g}",
                "mean": difference.mean(),
                "ci_low": float(low),
                "ci_high": float(high),
                "seeds": len(difference),
                "verdict": {"better": "met", "worse": "missed"}.get(verdict, "not resolved"),
            }
        )
    return pd.DataFrame(rows)


def transfer_report(results: pd.DataFrame) -> str:
    """Markdown: protocol, a mean ± std table per method, and the targets."""
    summary = transfer_summary(results)
    summary["cell"] = [
        f"{m:.3f} ± {s:.3f}" if np.isfinite(s) else f"{m:.3f}"
        for m, s in zip(summary["mean"], summary["std"], strict=True)
    ]
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
        *markdown_table(table),
        "",
        "## Targets (paired per seed, 95% t-interval)",
        "",
    ]
    targets = transfer_targets(results)
    if len(targets):
        targets = targets.assign(
            interval=[
                f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for m, lo, hi in zip(
                    targets["mean"], targets["ci_low"], targets["ci_high"], strict=True
                )
            ]
        )[["target", "interval", "seeds", "verdict"]]
        lines += markdown_table(targets)
    return "\n".join(lines) + "\n"

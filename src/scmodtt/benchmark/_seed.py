"""One seed of the benchmark: its split, selected genes, module tables and RNA–protein pairs.

Every model of a seed trains and is scored on the same cells, features and modules, built once
from the seed's training cells (:class:`SeedContext`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mudata import MuData

from .. import metrics, pp
from ._data import (
    Split,
    detected_genes,
    drop_rare_labels,
    exclude_cells_with_labels,
    load_benchmark_data,
    stratified_split,
    with_genes,
)
from ._zoo import PROTEIN_MOD, RNA_MOD


@dataclass
class SeedContext:
    """A seed's cells and features, shared by every model of that seed.

    Built by :meth:`build`: a stratified train / validation / test split of the cells, the genes
    selected on the training cells, the module tables of each module method (``.varm`` of
    ``fit``, under :func:`modules_key`) and the kept RNA–protein pairs of the training cells.
    """

    dataset: str
    seed: int
    labels_key: str
    batch_key: str | None
    fit: MuData  # training + validation cells, selected features, module tables in .varm
    train: MuData
    validation: MuData
    test: MuData
    split_in_fit: Split  # positions of train/validation cells inside `fit`
    pairs: pd.DataFrame
    label_counts: pd.Series
    embeddings_folder: Path | None  # where to keep synthetic cells for the report's UMAPs
    embedding_budget: str  # the budget whose synthetic cells are kept

    @classmethod
    def build(
        cls,
        mdata,
        dataset,
        labels_key,
        batch_key,
        seed,
        n_top_genes,
        n_modules,
        methods,
        embeddings_folder,
        embedding_budget,
    ) -> SeedContext:
        split = stratified_split(mdata.obs[labels_key], seed)
        fit_positions = np.sort(np.concatenate([split.train, split.validation]))
        fit = mdata[fit_positions].copy()
        is_train = np.isin(fit_positions, split.train)
        genes = select_genes(fit[is_train].copy(), n_top_genes)
        fit = with_genes(fit, genes)
        for method in methods:
            add_modules(fit, method, is_train, n_modules, seed)
        train = fit[is_train].copy()
        pairs = pp.rna_protein_pairs(train)
        pairs = pairs[pairs["kept"]] if "kept" in pairs else pairs
        test = with_genes(mdata[split.test].copy(), genes)
        return cls(
            dataset,
            seed,
            labels_key,
            batch_key,
            fit,
            train,
            fit[~is_train].copy(),
            test,
            Split(
                np.flatnonzero(is_train), np.flatnonzero(~is_train), np.array([], dtype=np.int64)
            ),
            pairs,
            test.obs[labels_key].astype(str).value_counts().sort_index(),
            embeddings_folder,
            embedding_budget,
        )

    def score(self, synthetic: MuData, min_cells: int = 20) -> pd.DataFrame:
        """Every metric of synthetic cells against this seed's test cells (long format)."""
        return metrics.evaluate(
            self.test,
            synthetic,
            self.pairs,
            labels_key=self.labels_key,
            real_train=self.train,
            reference=self.validation,
            seed=self.seed,
            min_cells=min_cells,
        )


def reapseq_context(seed: int, labels_key: str = "cell_type") -> SeedContext:
    """One seed of the published REAP-seq setting, for the diagnostic scripts: without the
    ``doublet-like`` and ``low_quality`` cells and labels under 40 cells, 2,000 HVGs, Ward modules
    (docs/benchmarks.md, "Protocol").
    """
    dataset, mdata = load_benchmark_data("reapseq_pbmc", labels_key, None)
    mdata, _ = exclude_cells_with_labels(mdata, labels_key, ["doublet-like", "low_quality"])
    mdata, _ = drop_rare_labels(mdata, labels_key, 40)
    return SeedContext.build(
        mdata, dataset, labels_key, None, seed, 2000, None, {"ward"}, None, "default"
    )


def select_genes(train: MuData, n_top_genes: int | None) -> pd.Index:
    """HVGs of the training cells plus every gene paired with an ADT (or all detected genes)."""
    detected = detected_genes(train)
    if n_top_genes is None:
        return train[RNA_MOD].var_names[detected]
    pp.highly_variable_genes(train, n_top_genes=min(n_top_genes, int(detected.sum())))
    chosen = set(train[RNA_MOD].var_names[train[RNA_MOD].var["highly_variable"].to_numpy()])
    paired = pp.rna_protein_pairs(train)
    chosen |= set(paired.loc[paired["gene"].isin(train[RNA_MOD].var_names), "gene"])
    keep = train[RNA_MOD].var_names.isin(list(chosen)) & detected
    return train[RNA_MOD].var_names[keep]


def modules_key(method: str) -> str:
    """The ``.varm`` key of the module tables of ``method`` (``"ward"``, ``"random"``, ...)."""
    return f"modtt_modules_{method}"


def add_modules(
    fit: MuData, method: str, is_train: np.ndarray, n_modules: dict | None, seed: int
) -> None:
    """Module tables of ``method``, built on the training cells of ``fit``, under its key.

    Random modules copy the sizes of the Ward modules, which are built first if missing.
    """
    from .. import datasets

    n_modules = n_modules or {"rna": 50, "prot": 20}
    key = modules_key(method)
    if method == "ward":
        pp.find_modules(
            fit, n_modules=n_modules, method="ward", key_added=key, cells=is_train, seed=seed
        )
    elif method == "random":
        if modules_key("ward") not in fit[RNA_MOD].varm:
            add_modules(fit, "ward", is_train, n_modules, seed)
        pp.find_modules(
            fit,
            n_modules=n_modules,
            method="random",
            key_added=key,
            cells=is_train,
            seed=seed,
            partition_key=modules_key("ward"),
        )
    else:
        pp.find_modules(
            fit,
            n_modules=n_modules,
            method="gene_sets",
            gene_sets=datasets.gene_sets("hallmark"),
            key_added=key,
            cells=is_train,
            seed=seed,
        )


def use_modules(fit: MuData, method: str) -> None:
    """Point MODTT's module key at the module tables of ``method`` (Ward, random, Hallmark)."""
    for modality in (RNA_MOD, PROTEIN_MOD):
        fit.mod[modality].varm["modtt_modules"] = fit[modality].varm[modules_key(method)]

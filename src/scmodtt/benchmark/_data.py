"""Benchmark data: loading, label checks, per-seed splits and per-split features and modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mudata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData
from sklearn.model_selection import train_test_split

from ..datasets._files import MUDATA_FILES
from ._zoo import PROTEIN_MOD, RNA_MOD

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1  # of the training cells
#: Fewest cells a label needs so that a stratified split leaves it in train, validation and test.
MIN_CELLS_FOR_SPLIT = 10


def load_benchmark_data(
    data: str | Path, labels_key: str, batch_key: str | None = None
) -> tuple[str, MuData]:
    """Load a bundled dataset by name or an ``.h5mu`` path; return ``(name, mdata)``.

    Labels and batches are looked up in ``mdata.obs`` and then in the modalities' ``.obs``.
    """
    from .. import datasets

    mudata.set_options(pull_on_update=False)
    path = Path(str(data))
    if path.suffix == ".h5mu":
        if not path.exists():
            raise FileNotFoundError(f"No such .h5mu file: {path}.")
        name, mdata = path.stem, mudata.read_h5mu(path)
    else:
        name = str(data)
        if name not in MUDATA_FILES:
            raise ValueError(
                f"Unknown dataset {name!r}: pass the path of an .h5mu file with `rna` and `prot` "
                f"raw counts, or one of the bundled datasets {list(MUDATA_FILES)}."
            )
        mdata = getattr(datasets, name)()
    missing = {RNA_MOD, PROTEIN_MOD} - set(mdata.mod)
    if missing:
        raise ValueError(
            f"{name}: the benchmark needs modalities 'rna' and 'prot' with raw counts; "
            f"{sorted(missing)} missing (it has {sorted(mdata.mod)}). Rename them in the MuData."
        )
    for key, role in ((labels_key, "labels"), (batch_key, "batches")):
        if key is not None:
            mdata.obs[key] = _find_obs_column(mdata, key, role, name)
    return name, mdata


def _find_obs_column(mdata: MuData, key: str, role: str, name: str) -> pd.Series:
    if key in mdata.obs:
        return mdata.obs[key]
    for _, modality in mdata.mod.items():
        if key in modality.obs:
            return modality.obs[key].reindex(mdata.obs_names)
    hint = (
        " The benchmark compares cells per cell type, so it needs labels."
        if role == "labels"
        else ""
    )
    raise ValueError(
        f"{name}: no column {key!r} with {role} in `.obs` of the MuData or of its "
        f"modalities.{hint} "
        f"Pass the right key (`--labels-key` / `--batch-key`)."
    )


def check_labels_for_split(labels: pd.Series, min_cells: int = MIN_CELLS_FOR_SPLIT) -> None:
    """Refuse labels too rare for a stratified train/validation/test split."""
    if labels.isna().any():
        raise ValueError(
            f"{int(labels.isna().sum())} cells have no label; drop them or label them before "
            "benchmarking."
        )
    counts = labels.value_counts()
    rare = counts[counts < min_cells]
    if len(rare):
        raise ValueError(
            f"{len(rare)} label(s) have fewer than {min_cells} cells, too few for a stratified "
            f"train/validation/test split: {rare.to_dict()}. Drop them explicitly with "
            f"`min_cells_per_label={min_cells}` (`--min-cells-per-label {min_cells}`) or merge "
            "them."
        )


def exclude_cells_with_labels(
    mdata: MuData, labels_key: str, labels
) -> tuple[MuData, dict[str, int]]:
    """Remove the cells of the given labels; return how many cells each removed label had."""
    counts = mdata.obs[labels_key].astype(str).value_counts()
    unknown = sorted(set(map(str, labels)) - set(counts.index))
    if unknown:
        raise ValueError(
            f"Cannot exclude unknown label(s) {unknown}; the labels are {sorted(counts.index)}."
        )
    removed = counts[counts.index.isin(list(map(str, labels)))]
    keep = ~mdata.obs[labels_key].astype(str).isin(removed.index).to_numpy()
    subset = mdata[keep].copy()
    subset.obs[labels_key] = subset.obs[labels_key].astype(str).astype("category")
    return subset, {str(k): int(v) for k, v in removed.items()}


def drop_rare_labels(
    mdata: MuData, labels_key: str, min_cells: int
) -> tuple[MuData, dict[str, int]]:
    """Remove cells of labels with fewer than ``min_cells`` cells; return what was dropped."""
    counts = mdata.obs[labels_key].astype(str).value_counts()
    return exclude_cells_with_labels(mdata, labels_key, counts.index[counts < min_cells])


@dataclass(frozen=True)
class Split:
    """Positions of the train, validation and test cells of one seed."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def stratified_split(labels: pd.Series, seed: int) -> Split:
    """80/20 train/test stratified by label, then 10% of train as validation (stratified)."""
    positions = np.arange(len(labels))
    values = labels.astype(str).to_numpy()
    train_validation, test = train_test_split(
        positions, test_size=TEST_FRACTION, stratify=values, random_state=seed
    )
    train, validation = train_test_split(
        train_validation,
        test_size=VALIDATION_FRACTION,
        stratify=values[train_validation],
        random_state=seed,
    )
    return Split(np.sort(train), np.sort(validation), np.sort(test))


def detected_genes(mdata: MuData, min_cells: int = 10) -> np.ndarray:
    """Boolean mask of genes detected (count > 0) in at least ``min_cells`` cells."""
    counts = mdata[RNA_MOD].X
    detected = (
        (counts > 0).sum(axis=0) if sp.issparse(counts) else (np.asarray(counts) > 0).sum(axis=0)
    )
    return np.asarray(detected).ravel() >= min_cells


def with_genes(mdata: MuData, genes: pd.Index) -> MuData:
    """A new MuData with these RNA genes and every ADT (the cells' ``obs`` copied)."""
    rna = mdata[RNA_MOD][:, genes].copy()
    subset = MuData({RNA_MOD: rna, PROTEIN_MOD: mdata[PROTEIN_MOD].copy()})
    subset.obs = mdata.obs.copy()
    return subset

"""Backed (on-disk) MuData: detection, checks, row blocks, and the flow prior's on-disk rows.

A MuData opened with ``mudata.read_h5mu(path, backed=True)`` (or
:func:`scmodtt.io.read_h5mu_store`) keeps each modality's ``.X`` on disk as anndata's backed
sparse dataset. scvi-tools' own data loader reads mini-batches of its rows (it sorts each
mini-batch's rows for HDF5); everything MODTT computes over all cells streams blocks of rows
through the helpers here, so that memory follows the block and batch sizes, not the cells.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import h5py
import numpy as np
import scipy.sparse as sp
import torch
from anndata.abc import CSCDataset, CSRDataset
from scvi.data import AnnDataManager
from torch.utils.data import Dataset, Subset

from ..io._store import check_modalities_agree

logger = logging.getLogger(__name__)

#: Matrix elements per block of rows streamed over the data (32 MiB as float64 when densified).
BLOCK_ELEMENTS = 1 << 22
#: Most rows per streamed block.
MAX_BLOCK_ROWS = 8192


def is_backed(matrix) -> bool:
    """Whether a registered matrix lives on disk (backed anndata) rather than in memory."""
    return isinstance(matrix, CSRDataset | CSCDataset | h5py.Dataset)


def block_rows(n_features: int) -> int:
    """Rows per streamed block for a matrix with ``n_features`` columns."""
    return int(np.clip(BLOCK_ELEMENTS // max(n_features, 1), 1, MAX_BLOCK_ROWS))


def row_blocks(n_rows: int, n_features: int):
    """``(start, stop)`` of consecutive blocks of rows covering ``n_rows``."""
    step = block_rows(n_features)
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def read_rows(matrix, start: int, stop: int):
    """Rows ``start:stop`` of a backed or in-memory matrix, in memory (CSR for sparse data)."""
    block = matrix[start:stop]
    return sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)


class MODTTDataManager(AnnDataManager):
    """scvi-tools' :class:`~scvi.data.AnnDataManager`, with backed mini-batches kept in order.

    scvi-tools' dataset reads the rows of a backed mini-batch in increasing order (HDF5 reads
    them so) and returns them in that order. Anything drawn per row (the reparameterisation
    noise, modality dropout) then goes to other cells than with the same data in memory. Here
    the rows come back in the order the sampler asked for, so that training from disk is
    training in memory, mini-batch for mini-batch.
    """

    def create_torch_dataset(
        self, indices=None, data_and_attributes=None, load_sparse_tensor=False
    ):
        """:meth:`scvi.data.AnnDataManager.create_torch_dataset`, in the asked order."""
        dataset = super().create_torch_dataset(
            data_and_attributes=data_and_attributes, load_sparse_tensor=load_sparse_tensor
        )
        if getattr(self.adata, "isbacked", False) and not load_sparse_tensor:
            dataset = _InOrder(dataset)
        return dataset if indices is None else Subset(dataset, indices)


class _InOrder(Dataset):
    """A backed :class:`~scvi.data.AnnTorchDataset` whose mini-batches keep the asked order."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indexes):
        if isinstance(indexes, int | np.integer | slice):
            return self.dataset[indexes]
        indexes = np.asarray(indexes)
        order = np.argsort(indexes, kind="stable")
        batch = self.dataset[indexes]  # rows of `indexes[order]`
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        return {key: values[position] for key, values in batch.items()}


def check_backed_mudata(mdata, modalities: dict[str, str], layers: dict[str, str | None]) -> None:
    """Raise if a backed MuData cannot be trained from disk; name the modality and the fix.

    Parameters
    ----------
    mdata
        The MuData given to ``setup_mudata``.
    modalities
        ``{role: modality name}`` of the RNA and protein counts.
    layers
        ``{modality name: layer}`` registered for each (``None``: ``.X``).

    """
    names = list(modalities.values())
    check_modalities_agree(
        {mod: mdata[mod].obs_names for mod in names}, f"the backed MuData {mdata.filename!r}"
    )
    if not mdata.obs_names.equals(mdata[names[0]].obs_names):
        raise ValueError(
            f"The backed MuData {mdata.filename!r} has cells outside the modalities "
            f"{names} ({mdata.n_obs} in the MuData, {mdata[names[0]].n_obs} in each modality): "
            "MODTT trains on paired cells. Write a store of the paired cells only."
        )
    for mod in names:
        layer = layers[mod]
        if layer is not None:
            logger.warning(
                "Layer %r of the backed modality %r was read into memory by anndata (backed "
                "mode keeps only `.X` on disk). To train from disk, store the counts in `.X` "
                "and register `layer=None`.",
                layer,
                mod,
            )
            continue
        if isinstance(mdata[mod].X, CSCDataset):
            raise ValueError(
                f"The counts of the backed modality {mod!r} are stored as a CSC matrix: "
                "reading a mini-batch of cells from it reads the whole matrix. Rewrite the store "
                "with CSR counts (`scmodtt.io.write_h5mu_store` does)."
            )


def check_finite_streamed(matrix, description: str) -> None:
    """:func:`~scmodtt.model._validation.check_finite` of a backed matrix, block by block."""
    n_bad = 0
    for start, stop in row_blocks(matrix.shape[0], matrix.shape[1]):
        block = read_rows(matrix, start, stop)
        values = block.data if sp.issparse(block) else block
        if np.issubdtype(values.dtype, np.floating):
            n_bad += int((~np.isfinite(values)).sum())
    if n_bad:
        raise ValueError(
            f"{description} holds {n_bad} NaN or infinite value(s). Remove or impute them before "
            "`setup_mudata`; MODTT models raw counts."
        )


class OnDiskRows:
    """A float32 matrix in a temporary HDF5 file whose rows are read per mini-batch.

    The flow prior's fitting values (posterior means, scales and library statistics of every
    training cell) live here for backed data instead of in memory. The dataset is contiguous,
    so a mini-batch of scattered rows reads only those rows. Indexing with a tensor of row
    numbers returns them, in that order, as a tensor on ``device``.

    Parameters
    ----------
    n_rows, n_columns
        Shape of the matrix.
    device
        Device of the tensors that indexing returns.

    """

    def __init__(self, n_rows: int, n_columns: int, device: torch.device | str = "cpu"):
        self._folder = tempfile.mkdtemp(prefix="scmodtt-flow-")
        self._file = h5py.File(os.path.join(self._folder, "rows.h5"), "w")
        self._rows = self._file.create_dataset("rows", shape=(n_rows, n_columns), dtype="f4")
        self.shape = (n_rows, n_columns)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return self.shape[0]

    def write(self, start: int, block: np.ndarray) -> None:
        """Write ``block`` into rows ``start:start + len(block)``."""
        self._rows[start : start + len(block)] = np.asarray(block, dtype=np.float32)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        rows = np.asarray(torch.as_tensor(rows).reshape(-1).cpu())
        order = np.argsort(rows, kind="stable")  # HDF5 reads increasing, unique rows
        sorted_rows, inverse = np.unique(rows[order], return_inverse=True)
        values = self._rows[sorted_rows][inverse]
        out = np.empty_like(values)
        out[order] = values
        return torch.from_numpy(out).to(self.device)

    def close(self) -> None:
        """Delete the temporary file."""
        if self._file.id.valid:
            self._file.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __del__(self):  # the file goes with the object, also after an error in the fit
        try:
            self.close()
        except Exception:  # noqa: BLE001 — interpreter shutdown may have removed modules
            pass

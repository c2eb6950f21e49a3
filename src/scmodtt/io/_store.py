"""On-disk stores of paired RNA + ADT counts: one ``.h5mu`` file read as backed MuData.

The store is an ordinary MuData file (:func:`mudata.write_h5mu`), with each modality's counts in
``.X`` as a CSR matrix. :func:`mudata.read_h5mu` with ``backed=True`` then leaves every ``.X`` on
disk as anndata's backed sparse dataset, whose rows scvi-tools' own data loader reads mini-batch
by mini-batch; ``obs``, ``var`` and ``varm`` (cell labels, feature names, module tables) are small
and come into memory. Backed anndata reads ``layers``, ``obsm`` and ``obsp`` into memory, so a
store keeps its counts in ``.X`` and nothing per cell beyond ``obs``.

Why backed MuData and not a custom data module: it installs with anndata and mudata, holds both
modalities of the same cells in one file, and scvi-tools' own loader reads it; scvi-tools' custom
data modules (lamindb's ``MappedCollection``, TileDB-SOMA) deliver one count matrix per cell, so
the ADTs would need a second loader kept in step with the first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import anndata as ad
import h5py
import mudata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import read_elem, sparse_dataset, write_elem

from .._validation import missing_and_extra

logger = logging.getLogger(__name__)

#: Elements of an HDF5 dataset copied per step when the counts move into the final file.
_COPY_BLOCK = 1 << 22


def write_h5mu_store(
    path: str | os.PathLike,
    chunks: Iterable[mudata.MuData],
    overwrite: bool = False,
) -> Path:
    """Write an on-disk store of paired counts from MuData chunks, one chunk in memory at a time.

    Each chunk holds the same modalities with the same features (e.g. successive calls of
    :meth:`scmodtt.MODTT.sample`, or the pieces of a data set too large to load). Their cells are
    appended, in order, to one ``.h5mu`` file: each modality's ``.X`` as a CSR matrix (the dtype
    of the first chunk), ``obs`` of every modality and of the MuData, and ``var``, ``varm`` and
    ``uns`` of the first chunk. ``layers``, ``obsm`` and ``obsp`` are not written: backed mode
    would read them into memory. Open the store with :func:`read_h5mu_store`.

    Parameters
    ----------
    path
        The ``.h5mu`` file to write.
    chunks
        MuData objects with the same modalities and features, paired (each modality has the
        chunk's cells in the same order). Cell names must be unique over all chunks.
    overwrite
        Replace an existing file.

    Returns
    -------
    The path of the store.

    Examples
    --------
    >>> chunks = (model.sample(n_per_label=1000, seed=seed) for seed in range(20))
    >>> scmodtt.io.write_h5mu_store("/tmp/synthetic.h5mu", chunks)
    >>> store = scmodtt.io.read_h5mu_store("/tmp/synthetic.h5mu")

    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass `overwrite=True` to replace it.")
    partial = path.with_name(path.name + ".partial")
    template = None
    obs_parts: dict[str | None, list[pd.DataFrame]] = {}
    try:
        # The counts go to a side file first: the MuData skeleton written by mudata needs every
        # chunk's obs, which are known only at the end.
        with h5py.File(partial, "w") as side:
            for position, chunk in enumerate(chunks):
                if template is None:
                    template = _template(chunk)
                    obs_parts = {None: [], **{mod: [] for mod in template["mods"]}}
                _check_chunk(chunk, position, template)
                for mod, dtype in template["dtypes"].items():
                    counts = sp.csr_matrix(chunk[mod].X, dtype=dtype)
                    if position == 0:
                        write_elem(side, mod, counts)
                    else:
                        sparse_dataset(side[mod]).append(counts)
                    obs_parts[mod].append(chunk[mod].obs.copy())
                obs_parts[None].append(chunk.obs.copy())
        if template is None:
            raise ValueError("`chunks` is empty: there are no cells to write.")
        obs = {mod: pd.concat(parts) for mod, parts in obs_parts.items()}
        duplicated = obs[None].index[obs[None].index.duplicated()]
        if len(duplicated):
            raise ValueError(
                f"{len(duplicated)} cell name(s) occur in more than one chunk, e.g. "
                f"{list(duplicated[:5])}. Give every chunk's cells unique names, e.g. "
                "`chunk.obs_names = [f'{i}-{name}' for name in chunk.obs_names]` per chunk i."
            )
        _write_skeleton(path, template, obs)
        with h5py.File(path, "a") as store, h5py.File(partial, "r") as side:
            for mod in template["mods"]:
                del store[f"mod/{mod}/X"]
                _copy_group(side[mod], store[f"mod/{mod}"].create_group("X"))
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Wrote %d cells to %s.", len(obs[None]), path)
    return path


def read_h5mu_store(path: str | os.PathLike) -> mudata.MuData:
    """Open an on-disk ``.h5mu`` store as backed MuData, after checking that it is paired.

    Every modality's ``.X`` stays on disk; register the result with
    :meth:`scmodtt.MODTT.setup_mudata` (``rna_layer=None``, ``protein_layer=None``) and train as
    usual: MODTT streams what it computes over all cells and scvi-tools' data loader reads
    mini-batches of rows.

    Parameters
    ----------
    path
        A ``.h5mu`` file, e.g. from :func:`write_h5mu_store` or :func:`mudata.write_h5mu`.

    Returns
    -------
    MuData backed by the file (:func:`mudata.read_h5mu` with ``backed=True``).

    Raises
    ------
    ValueError
        If the modalities disagree on cells (number, names or order), a modality's counts have
        another number of cells or features than its ``obs`` and ``var``, or a modality's ``.X``
        is not a CSR matrix (mini-batches read rows).

    Examples
    --------
    >>> mdata = scmodtt.io.read_h5mu_store("/tmp/synthetic.h5mu")
    >>> scmodtt.MODTT.setup_mudata(mdata, labels_key="cell_type", modalities=modalities)
    >>> model = scmodtt.MODTT(mdata)
    >>> model.train(max_epochs=20)

    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No store at {path}.")
    with h5py.File(path, "r") as store:
        if "mod" not in store or not len(store["mod"]):
            raise ValueError(f"{path} has no modalities (no `mod` group): is it a MuData file?")
        order = [str(mod) for mod in store["mod"].attrs.get("mod-order", list(store["mod"]))]
        described = {mod: _describe_modality(store["mod"][mod], mod) for mod in order}
    check_modalities_agree({mod: cells for mod, (cells, _) in described.items()}, str(path))
    for mod, (_, in_memory) in described.items():
        if in_memory:
            logger.warning(
                "Modality %r of %s has %s, which backed mode reads into memory; keep only `.X` "
                "per cell (`write_h5mu_store` writes no layers).",
                mod,
                path,
                ", ".join(in_memory),
            )
    return mudata.read_h5mu(path, backed=True)


def check_modalities_agree(cells: dict[str, pd.Index], where: str) -> None:
    """Raise if the modalities of a paired store do not hold the same cells in the same order."""
    (first, reference), *others = cells.items()
    for mod, names in others:
        if names.equals(reference):
            continue
        if len(names) != len(reference):
            detail = f"{len(reference)} cells in {first!r}, {len(names)} in {mod!r}"
        else:
            position = int(np.flatnonzero(np.asarray(names) != np.asarray(reference))[0])
            detail = (
                f"first difference at position {position}: {reference[position]!r} in {first!r}, "
                f"{names[position]!r} in {mod!r}"
            )
        missing, extra = missing_and_extra(reference, names)
        raise ValueError(
            f"Modalities {first!r} and {mod!r} of {where} disagree on cells ({detail}; "
            f"{len(missing)} cells only in {first!r}, e.g. {list(missing[:3])}; {len(extra)} only "
            f"in {mod!r}, e.g. {list(extra[:3])}). MODTT trains on paired cells: write every "
            "modality with the same cells in the same order (`write_h5mu_store` does), e.g. "
            "after `muon.pp.intersect_obs(mdata)` on the data in memory."
        )


def _describe_modality(group: h5py.Group, mod: str) -> tuple[pd.Index, list[str]]:
    """A modality's cell names, after checking its counts against its obs and var."""
    cells = pd.Index(read_elem(group["obs"]).index)
    n_vars = len(read_elem(group["var"]).index)
    if "X" not in group:
        raise ValueError(
            f"Modality {mod!r} has no `.X`: a store keeps each modality's counts there."
        )
    matrix = group["X"]
    encoding = matrix.attrs.get("encoding-type", "array")
    if encoding != "csr_matrix":
        raise ValueError(
            f"The counts of modality {mod!r} are stored as {encoding!r}; mini-batches read cells "
            "(rows), which needs a CSR matrix. Rewrite the store with `write_h5mu_store`, or "
            f"store `mdata[{mod!r}].X = scipy.sparse.csr_matrix(...)` before writing."
        )
    shape = tuple(int(n) for n in matrix.attrs["shape"])
    if shape != (len(cells), n_vars):
        raise ValueError(
            f"The counts of modality {mod!r} are {shape[0]} cells × {shape[1]} features, but its "
            f"obs names {len(cells)} cells and its var {n_vars} features: the store is "
            "inconsistent. Rewrite it from data whose matrix, obs and var agree."
        )
    in_memory = [name for name in ("layers", "obsm", "obsp") if name in group and len(group[name])]
    return cells, in_memory


def _template(chunk: mudata.MuData) -> dict:
    mods = list(chunk.mod)
    return {
        "mods": mods,
        "var": {mod: chunk[mod].var.copy() for mod in mods},
        "varm": {mod: dict(chunk[mod].varm) for mod in mods},
        "uns": {mod: dict(chunk[mod].uns) for mod in mods},
        "mdata_uns": dict(chunk.uns),
        "dtypes": {mod: _count_dtype(chunk[mod].X) for mod in mods},
    }


def _count_dtype(matrix) -> np.dtype:
    dtype = np.dtype(matrix.dtype)
    return dtype if np.issubdtype(dtype, np.number) else np.dtype(np.float32)


def _check_chunk(chunk: mudata.MuData, position: int, template: dict) -> None:
    """Raise if a chunk's modalities or features differ from the first chunk's, or are unpaired."""
    where = f"chunk {position}"
    if list(chunk.mod) != template["mods"]:
        raise ValueError(
            f"The modalities of {where} are {list(chunk.mod)}, those of chunk 0 "
            f"{template['mods']}: every chunk needs the same modalities."
        )
    for mod in template["mods"]:
        expected, observed = template["var"][mod].index, chunk[mod].var_names
        if not observed.equals(expected):
            missing, extra = missing_and_extra(expected, observed)
            raise ValueError(
                f"The features of modality {mod!r} in {where} differ from chunk 0's "
                f"({len(expected)} expected, {len(observed)} given; {len(missing)} missing, e.g. "
                f"{list(missing[:5])}; {len(extra)} unexpected, e.g. {list(extra[:5])}). Subset "
                f"and order every chunk to the same features: `chunk.mod[{mod!r}] = "
                f"chunk[{mod!r}][:, features]`."
            )
        if chunk[mod].X is None:
            raise ValueError(f"Modality {mod!r} of {where} has no `.X`; put its counts there.")
    check_modalities_agree({mod: chunk[mod].obs_names for mod in template["mods"]}, where)
    if not chunk.obs_names.equals(chunk[template["mods"][0]].obs_names):
        raise ValueError(
            f"The cells of {where} are not in the order of its modalities; build each chunk as "
            "`MuData({...})` from modalities with the same cells."
        )


def _write_skeleton(path: Path, template: dict, obs: dict) -> None:
    """The MuData file around the counts: obs, var, varm, uns, and empty ``.X`` placeholders."""
    n_obs = len(obs[None])
    mods = {}
    for mod in template["mods"]:
        var = template["var"][mod]
        mods[mod] = ad.AnnData(
            X=sp.csr_matrix((n_obs, len(var)), dtype=template["dtypes"][mod]),
            obs=obs[mod],
            var=var,
            varm=template["varm"][mod],
            uns=template["uns"][mod],
        )
    with mudata.set_options(pull_on_update=False):
        mdata = mudata.MuData(mods)
        mdata.obs = obs[None]
        mdata.uns.update(template["mdata_uns"])
        mdata.write(path)


def _copy_group(source: h5py.Group, target: h5py.Group) -> None:
    """Copy a sparse matrix group block by block, so that memory stays bounded."""
    for key, value in source.attrs.items():
        target.attrs[key] = value
    for name, dataset in source.items():
        copy = target.create_dataset(name, shape=dataset.shape, dtype=dataset.dtype)
        for start in range(0, dataset.shape[0], _COPY_BLOCK):
            copy[start : start + _COPY_BLOCK] = dataset[start : start + _COPY_BLOCK]

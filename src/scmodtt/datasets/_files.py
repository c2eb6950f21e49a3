"""Where the data files shipped inside the package live, and how to read the MuData ones."""

from __future__ import annotations

import warnings
from importlib.resources import files
from pathlib import Path

import mudata

#: Shipped MuData sets, by the name of their loader.
MUDATA_FILES = {
    "reapseq_pbmc": "reapseq_pbmc.h5mu",
    "bmmc_cite": "bmmc_cite.h5mu",
    "tiny_cite": "tiny_cite.h5mu",
    # The panel's ECCITE-seq and PBMC5k cells; `pbmc_panel()` adds reapseq_pbmc's cells.
    "pbmc_panel": "pbmc_panel.h5mu",
}
#: Shipped gene-set collections, by the name :func:`scmodtt.datasets.gene_sets` takes.
GENE_SET_FILES = {
    "hallmark": "genesets/hallmark.gmt.gz",
    "reactome": "genesets/reactome.gmt.gz",
    "go_bp": "genesets/go_bp_2021.gmt.gz",
}
SHIPPED_FILES = {**MUDATA_FILES, **GENE_SET_FILES}


def path(name: str) -> Path:
    """Path of a data file shipped with scmodtt.

    Parameters
    ----------
    name
        A data set (``"reapseq_pbmc"``, ``"bmmc_cite"``, ``"tiny_cite"``, ``"pbmc_panel"``;
        ``.h5mu`` files; the ``pbmc_panel`` file holds the panel's ECCITE-seq and PBMC5k cells
        only, :func:`~scmodtt.datasets.pbmc_panel` adds the REAP-seq ones) or a gene-set
        collection (``"hallmark"``, ``"reactome"``, ``"go_bp"``; gzipped GMT files).

    Returns
    -------
    Absolute path of the file, e.g. to pass to a command-line tool.

    Raises
    ------
    ValueError
        If ``name`` is not a shipped file.
    FileNotFoundError
        If the installation lacks the file (an installation without package data).

    Examples
    --------
    >>> import scmodtt
    >>> scmodtt.datasets.path("bmmc_cite").name
    'bmmc_cite.h5mu'

    """
    if name not in SHIPPED_FILES:
        raise ValueError(
            f"No shipped data file named {name!r}. Valid names: "
            f"{', '.join(repr(valid) for valid in SHIPPED_FILES)}."
        )
    file_path = Path(str(files("scmodtt").joinpath("data", SHIPPED_FILES[name])))
    if not file_path.is_file():
        raise FileNotFoundError(
            f"{file_path} is missing: this installation of scmodtt lacks its package data. "
            "Reinstall scmodtt from a wheel or a source checkout that includes src/scmodtt/data."
        )
    return file_path


def read_shipped_mudata(name: str) -> mudata.MuData:
    """A fresh MuData read from the shipped file of data set ``name``."""
    with warnings.catch_warnings(), mudata.set_options(pull_on_update=False):
        # bmmc_cite has three antibodies named like a measured gene (CD36, CD69, HLA-E); names are
        # unique within each modality, which is what scvi-tools and scanpy need.
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return mudata.read_h5mu(path(name))

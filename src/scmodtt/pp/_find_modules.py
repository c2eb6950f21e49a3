"""Group each modality's features into modules: Ward co-expression clusters, random, gene sets."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData

from .._constants import DEFAULT_MODULES_KEY, RNA_TARGET_SUM
from ._aliases import CONTROL_NAME
from ._gene_set_modules import gene_set_membership, load_gene_sets
from ._membership import membership_from_labels, read_membership, residual_name
from ._normalize import protein_normalized, rna_normalized
from ._random_modules import shuffled_membership
from ._standardize import standardized_features
from ._validation import cell_rows, get_counts, modality_names, resolve_cells
from ._ward import ward_labels

logger = logging.getLogger(__name__)

METHODS = ("ward", "random", "gene_sets")
#: Modules per modality when ``n_modules`` does not say (the reference paper's K and L). The
#: protein default is a cap, adapted to the panel; the RNA one is adapted only to fewer genes.
DEFAULT_RNA_MODULES = 50
DEFAULT_PROTEIN_MODULES = 20
#: Features per module, on average, that the adapted defaults aim at (see `_default_n_modules`).
FEATURES_PER_DEFAULT_MODULE = 2
#: Fewest modules an adapted default gives (when the modality has that many varying features).
MIN_DEFAULT_MODULES = 2
#: Features of a modality from which Ward shows a progress bar by default (about 10 s of work
#: on 2 cores and 7,500 cells; 2,000 genes take 3 s, a whole transcriptome a minute).
PROGRESS_MIN_FEATURES = 5000


def find_modules(
    mdata: MuData,
    n_modules: int | Mapping[str, int] | None = None,
    method: str | Mapping[str, str] = "ward",
    key_added: str = DEFAULT_MODULES_KEY,
    cells: Sequence | np.ndarray | pd.Index | None = None,
    seed: int = 0,
    gene_sets: str | PathLike | Mapping[str, Sequence[str]] | None = None,
    min_size: int = 5,
    layer: str | None = None,
    rna_mod: str | None = "rna",
    protein_mod: str | None = "prot",
    partition_key: str | None = None,
    progress: bool | None = None,
) -> None:
    """Group the genes and the proteins into modules, each later given its own encoder and decoder.

    Writes, for each modality, a boolean membership table (features × modules, index
    ``var_names``) to ``mdata[mod].varm[key_added]``. Hard clusters put each feature in one
    module; gene sets may overlap. Features that end up in no module (constant on the cells, in no
    kept gene set) go to one residual module per modality, ``"{mod}_residual"``, so that nothing
    is dropped; it exists only when some feature needs it. Nothing else in ``mdata`` is changed.

    The ``method`` decides how features are grouped:

    ``"ward"`` (the reference paper's)
        Per modality, agglomerative clustering with Ward linkage on correlation distance
        ``1 - r`` (Pearson) between features, computed on the normalized values of ``cells``
        only (RNA ``log1p`` of counts normalized to 10⁴ per cell, ADT per-cell CLR, as in
        :func:`normalize`), cut into ``n_modules`` clusters with
        :func:`scipy.cluster.hierarchy.fcluster` (``criterion="maxclust"``). Modules are named
        ``"{mod}_m00"``, ``"{mod}_m01"``, … by decreasing size. Deterministic; ``seed`` is unused.

        Ward needs Euclidean geometry: each feature is centred over the cells and scaled to unit
        norm, so that the squared Euclidean distance between two features is ``2 (1 - r)``.
        The clustering is exact (no projection; float32 correlations): the pairwise correlations
        are computed a block at a time with BLAS into a condensed distance vector, and
        fastcluster's Ward runs in place in it. Memory is 4 bytes × n_features² (0.9 GB at
        15,000 genes) plus the float32 cells × features matrix; time is dominated by the
        correlation products. Measured on the REAP-seq PBMC set (7,488 cells, 2 busy cores):
        2,000 genes 3 s; 15,139 genes (detected in ≥ 2 cells) 52 s wall, 28 s CPU, 2.9 GiB peak
        with the data loaded. Features constant on ``cells`` cannot be correlated: they go to
        the residual module, with a warning. Projecting the features onto their top principal
        axes would save memory but is a poor approximation for noisy gene expression (ARI
        0.06–0.08 against the exact partition on 2,000 PBMC genes), so it is not used.
    ``"random"``
        Size-matched random grouping, the ablation of the module structure: the module
        memberships of the non-residual features are permuted at random (``seed``), so every
        module keeps its size exactly (and overlapping gene sets keep their overlaps). The source
        partition is ``varm[partition_key]`` when given, else the Ward partition computed now.
        The residual module keeps its features. Modules are named ``"{mod}_random00"``, ….
    ``"gene_sets"``
        RNA modules are the ``gene_sets`` (a GMT path, or a mapping name → genes, e.g. from
        :func:`scmodtt._gmt.read_gmt`), matched to ``var_names`` exactly; sets with fewer than
        ``min_size`` measured genes are dropped; genes in no kept set go to the residual module.
        Proteins have no gene sets: they are clustered with ``"ward"`` into
        ``n_modules[protein_mod]`` modules. For another protein method pass a mapping, e.g.
        ``method={"rna": "gene_sets", "prot": "random"}``.

    The default numbers of modules, used for a modality that ``n_modules`` does not give, adapt
    to the features that Ward can cluster (those that vary across ``cells``):

    Proteins
        ``clip(n_adt // 2, 2, 20)``, at most the number of varying ADTs, where ``n_adt`` counts
        the varying ADTs that are not isotype controls or blanks (by name, or
        ``var["isotype_control"]``; controls are still clustered, they just do not add modules).
        That is about 2 ADTs per module, the reference paper's ratio (L = 20 on the 44 non-control
        ADTs of REAP-seq, 2.2 per module), and at most its L = 20: a 14-ADT TotalSeq-B panel gets
        7 modules, 17 ADTs 8, 29 ADTs 14; REAP-seq (48 ADTs, 4 of them controls), ECCITE-seq,
        BMMC (134) and AbSeq (~200) panels get 20.
    RNA
        50 when at least 50 genes vary; with fewer, ``max(2, n_genes // 2)`` (at most
        ``n_genes``) instead of an error.

    The number chosen and why are logged and stored in the summary (``n_modules_requested`` and
    ``n_modules_reason``). An explicit number (an int, or a mapping entry) is used as given: more
    modules than varying features is an error.

    Parameters
    ----------
    mdata
        MuData with raw integer counts in ``.X`` of each modality, or in ``layer``.
    n_modules
        Modules per modality for ``"ward"`` and ``"random"``: a mapping ``{modality: n}`` (missing
        modalities take the defaults above: 50 for RNA, about one per 2 ADTs and at most 20 for
        proteins) or one number for both. ``None``: the defaults for both.
    method
        ``"ward"``, ``"random"`` or ``"gene_sets"``, or a mapping ``{modality: method}``
        (missing modalities use ``"ward"``).
    key_added
        ``.varm`` key of the membership tables and ``mdata.uns`` key of the summary.
    cells
        Cells on which features are correlated (e.g. the training split): a boolean mask over
        ``mdata.obs_names``, integer positions, or obs names. ``None``: all cells.
    seed
        Seed of the random permutation for ``"random"``.
    gene_sets
        GMT path or mapping ``{set name: genes}`` for ``"gene_sets"``.
    min_size
        Fewest measured genes a gene set needs to be kept.
    layer
        Layer of both modalities that holds the raw counts; ``None`` reads ``.X``.
    rna_mod
        RNA modality; ``None`` skips it.
    protein_mod
        Protein (ADT) modality; ``None`` skips it.
    partition_key
        ``.varm`` key of an existing partition whose module sizes ``"random"`` matches.
    progress
        Show a progress bar of each modality's Ward clustering (correlations a block of features
        at a time, then the linkage), in ``scvi.settings.progress_bar_style``. ``None``: for
        modalities of at least 5,000 features (a whole transcriptome, not an ADT panel or 2,000
        highly variable genes, which take seconds) when ``scvi.settings.verbosity`` is ``INFO``
        or more verbose.

    Returns
    -------
    Nothing. Sets ``mdata[mod].varm[key_added]`` for each modality and a summary in
    ``mdata.uns[key_added]``: method, number of modules and of residual features, cells used,
    seed, layer and wall time per call; for each modality clustered now, the number of modules
    asked of Ward (``n_modules_requested``) and where it came from (``n_modules_reason``:
    ``"given"``, or the default rule's sentence).

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.reapseq_pbmc()  # doctest: +SKIP
    >>> mdata = scmodtt.pp.highly_variable_genes(mdata, 2000, subset=True)  # doctest: +SKIP
    >>> scmodtt.pp.find_modules(mdata, n_modules={"rna": 50, "prot": 20})  # doctest: +SKIP
    >>> mdata["rna"].varm["modtt_modules"].sum()  # module sizes  # doctest: +SKIP
    >>> scmodtt.pp.find_modules(  # doctest: +SKIP
    ...     mdata, method="random", partition_key="modtt_modules", key_added="random_modules"
    ... )
    >>> scmodtt.pp.find_modules(  # doctest: +SKIP
    ...     mdata, method="gene_sets", gene_sets="h.all.v7.0.symbols.gmt", key_added="hallmark"
    ... )

    """
    started = time.perf_counter()
    mods = modality_names([(rna_mod, "rna_mod"), (protein_mod, "protein_mod")], mdata)
    methods = _methods_per_modality(method, mods, rna_mod)
    n_modules_of = _n_modules_per_modality(n_modules, mods, rna_mod)
    uses = set(methods.values())
    if "gene_sets" in uses:
        if gene_sets is None:
            raise ValueError(
                "method 'gene_sets' needs `gene_sets=`: a GMT path or a mapping name → genes."
            )
        sets = load_gene_sets(gene_sets)
    elif gene_sets is not None:
        warnings.warn("`gene_sets` is ignored: no modality uses method 'gene_sets'.", stacklevel=2)
    if partition_key is not None and "random" not in uses:
        warnings.warn("`partition_key` is ignored: no modality uses method 'random'.", stacklevel=2)
    selected = resolve_cells(mdata, cells)

    summary: dict = {
        "method": {},
        "n_modules": {},
        "n_residual_features": {},
        "n_cells": {},
        "n_modules_requested": {},
        "n_modules_reason": {},
        "seed": int(seed),
        "layer": "X" if layer is None else layer,
    }
    tables = {}
    # Everything is computed before anything is written: an error leaves mdata as it was.
    for mod in mods:
        adata = mdata.mod[mod]
        is_rna = mod == rna_mod
        n_cells = 0
        if methods[mod] == "gene_sets":
            membership, n_dropped = gene_set_membership(sets, adata.var_names, min_size, mod)
            summary["gene_sets"] = _describe_gene_sets(gene_sets, len(sets))
            summary["min_size"] = int(min_size)
            summary["n_gene_sets_dropped"] = int(n_dropped)
        elif methods[mod] == "ward":
            membership, n_cells, requested, reason = _ward_membership(
                adata, is_rna, layer, selected, n_modules_of[mod], mod, progress
            )
            summary["n_modules_requested"][mod] = requested
            summary["n_modules_reason"][mod] = reason
        else:
            if partition_key is None:
                source, n_cells, requested, reason = _ward_membership(
                    adata, is_rna, layer, selected, n_modules_of[mod], mod, progress
                )
                summary["n_modules_requested"][mod] = requested
                summary["n_modules_reason"][mod] = reason
            else:
                source = read_membership(adata, partition_key, mod)
            summary["partition_key"] = "ward (computed)" if partition_key is None else partition_key
            membership = shuffled_membership(
                source, residual_name(mod), np.random.default_rng(seed), prefix=f"{mod}_random"
            )
        tables[mod] = membership
        residual = residual_name(mod)
        summary["method"][mod] = methods[mod]
        summary["n_modules"][mod] = int(sum(name != residual for name in membership.columns))
        summary["n_residual_features"][mod] = (
            int(membership[residual].sum()) if residual in membership else 0
        )
        summary["n_cells"][mod] = int(n_cells)

    for mod, membership in tables.items():
        mdata.mod[mod].varm[key_added] = membership
    summary["elapsed_seconds"] = round(time.perf_counter() - started, 3)
    mdata.uns[key_added] = summary
    logger.info(
        "find_modules: %s modules %s written to varm[%r] in %.1f s.",
        summary["method"],
        summary["n_modules"],
        key_added,
        summary["elapsed_seconds"],
    )


def _methods_per_modality(
    method: str | Mapping[str, str], mods: list[str], rna_mod: str | None
) -> dict[str, str]:
    if isinstance(method, str):
        # Proteins have no gene sets: they are clustered with Ward (see the docstring).
        chosen = {
            mod: "ward" if method == "gene_sets" and mod != rna_mod else method for mod in mods
        }
        requested = [method]
    elif isinstance(method, Mapping):
        unknown_mods = set(method) - set(mods)
        if unknown_mods:
            raise ValueError(
                f"`method` names modalities {sorted(unknown_mods)}; the modalities here are {mods}."
            )
        chosen = {mod: method.get(mod, "ward") for mod in mods}
        requested = list(chosen.values())
    else:
        raise TypeError(f"`method` must be a string or a mapping, got {type(method).__name__}.")
    for name in requested:
        if name not in METHODS:
            raise ValueError(
                f"Unknown method {name!r}; choose one of {', '.join(map(repr, METHODS))}."
            )
    for mod, name in chosen.items():
        if name == "gene_sets" and mod != rna_mod:
            raise ValueError(
                f"method 'gene_sets' applies to the RNA modality only, not {mod!r}; use 'ward' or "
                "'random' for proteins."
            )
    return chosen


def _n_modules_per_modality(
    n_modules: int | Mapping[str, int] | None, mods: list[str], rna_mod: str | None
) -> dict[str, int | None]:
    """The user's number of modules per modality; ``None`` where the default is to be adapted."""
    if n_modules is None:
        return dict.fromkeys(mods)
    if isinstance(n_modules, Mapping):
        unknown_mods = set(n_modules) - set(mods)
        if unknown_mods:
            raise ValueError(
                f"`n_modules` names modalities {sorted(unknown_mods)}; the modalities here are "
                f"{mods} (set them with `rna_mod=` / `protein_mod=`)."
            )
        chosen = {mod: n_modules[mod] for mod in mods if mod in n_modules}
    else:
        chosen = dict.fromkeys(mods, n_modules)
    for mod, count in chosen.items():
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise ValueError(
                f"The number of modules for {mod!r} must be a positive integer, got {count!r}."
            )
    return {mod: int(chosen[mod]) if mod in chosen else None for mod in mods}


def _isotype_controls(adata: AnnData) -> np.ndarray:
    """Boolean mask of the ADTs that are isotype controls or blanks (as in `rna_protein_pairs`)."""
    is_control = np.asarray(adata.var_names.astype(str).str.contains(CONTROL_NAME), dtype=bool)
    if "isotype_control" in adata.var:
        is_control |= adata.var["isotype_control"].fillna(False).to_numpy(dtype=bool)
    return is_control


def _default_n_modules(
    adata: AnnData, varying: np.ndarray, is_rna: bool, mod: str
) -> tuple[int, str]:
    """Default number of modules of a modality, adapted to the features Ward can cluster.

    Why: a fixed L = 20 is more modules than a 14–17 ADT TotalSeq-B panel has ADTs to put in
    them, and a module is only a module (a shared encoder for correlated features) with at least
    two members. So the protein default aims at about 2 ADTs per module, which is also the
    reference paper's ratio (L = 20 for the 44 non-control ADTs of REAP-seq: 2.2 per module),
    keeps the paper's 20 as a cap for large panels, and never asks for more modules than there
    are varying features. Isotype controls and blanks measure background, not a target, so they
    do not earn modules of their own (they are still clustered, usually together). The RNA
    default, 50, only changes when fewer than 50 genes vary, where it would otherwise be refused.

    Returns the number and a sentence saying what was chosen and why (logged and stored).
    """
    n_varying = int(varying.sum())
    how = f"pass n_modules={{{mod!r}: k}} to choose"
    if is_rna:
        if n_varying >= DEFAULT_RNA_MODULES:
            return DEFAULT_RNA_MODULES, f"default: {DEFAULT_RNA_MODULES} RNA modules"
        count = max(
            1, min(n_varying, max(MIN_DEFAULT_MODULES, n_varying // FEATURES_PER_DEFAULT_MODULE))
        )
        return count, (
            f"{n_varying} genes vary, fewer than the default {DEFAULT_RNA_MODULES} modules: using "
            f"{count} RNA modules (about {FEATURES_PER_DEFAULT_MODULE} genes per module; {how})"
        )
    n_controls = int((varying & _isotype_controls(adata)).sum())
    n_targets = n_varying - n_controls
    count = min(
        DEFAULT_PROTEIN_MODULES,
        max(MIN_DEFAULT_MODULES, n_targets // FEATURES_PER_DEFAULT_MODULE),
    )
    count = max(1, min(n_varying, count))
    controls = f" and {n_controls} isotype control(s)" if n_controls else ""
    return count, (
        f"{n_targets} varying ADTs{controls}: using {count} protein modules (about "
        f"{FEATURES_PER_DEFAULT_MODULE} ADTs per module, at least {MIN_DEFAULT_MODULES}, at most "
        f"{DEFAULT_PROTEIN_MODULES}; {how})"
    )


def _ward_membership(
    adata: AnnData,
    is_rna: bool,
    layer: str | None,
    selected: pd.Index | None,
    n_clusters: int | None,
    mod: str,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, int, int, str]:
    """Ward partition into ``n_clusters`` modules (``None``: the adapted default).

    Returns the membership, the number of cells, the number of modules asked of Ward and
    ``"given"`` or the default rule's sentence.
    """
    kind = "genes" if is_rna else "ADTs"
    with _progress_bar(
        # Units are features: normalization, each feature's correlations, the linkage.
        total=adata.n_vars + 1,
        description=f"find_modules {mod}: normalizing {adata.n_vars:,} {kind}",
        enabled=_show_progress(progress, adata.n_vars),
    ) as advance:
        counts = get_counts(adata, layer, mod)
        rows = cell_rows(adata, selected, mod)
        if not isinstance(rows, slice):
            counts = counts[rows]
        values = rna_normalized(counts, RNA_TARGET_SUM) if is_rna else protein_normalized(counts)
        n_cells = values.shape[0]
        standardized, varying = standardized_features(values)
        del values
        n_varying = int(varying.sum())
        reason = "given"
        if n_clusters is None:
            n_clusters, reason = _default_n_modules(adata, varying, is_rna, mod)
            if is_rna and n_clusters != DEFAULT_RNA_MODULES:
                logger.warning("find_modules: %s.", reason)
            else:
                logger.info("find_modules: %s.", reason)
        if n_varying < n_clusters:
            raise ValueError(
                f"Modality {mod!r} has {n_varying} features that vary across the {n_cells} "
                f"selected cells, fewer than the {n_clusters} modules requested. Request fewer "
                f"modules (`n_modules={{{mod!r}: ...}}`) or use more features or cells."
            )
        if n_varying < adata.n_vars:
            constant = adata.var_names[~varying]
            warnings.warn(
                f"{constant.size} feature(s) of modality {mod!r} are constant across the "
                f"{n_cells} selected cells (e.g. {list(constant[:5])}); they have no correlation "
                f"and go to the residual module {residual_name(mod)!r}.",
                UserWarning,
                stacklevel=3,
            )
        advance(1 + adata.n_vars - n_varying, f"find_modules {mod}: correlations of {kind}")
        linkage = f"find_modules {mod}: Ward linkage of {n_varying:,} {kind}"
        rows_done = 0

        def on_block(n_rows: int) -> None:  # once per block of ~1,000 features, not per feature
            nonlocal rows_done
            rows_done += n_rows
            # After the last block of correlations, the bar names the linkage that follows.
            advance(n_rows, linkage if rows_done >= n_varying - 1 else None)

        labels = np.full(adata.n_vars, -1)
        labels[varying] = ward_labels(standardized, n_clusters, on_block)
        advance(advance.remaining)
        n_found = int(labels.max()) + 1
        if n_found < n_clusters:
            warnings.warn(
                f"Ward's tree of modality {mod!r} has tied merge heights: cut into {n_found} "
                f"modules, not {n_clusters}.",
                UserWarning,
                stacklevel=3,
            )
        return membership_from_labels(adata.var_names, labels, mod), n_cells, n_clusters, reason


def _show_progress(progress: bool | None, n_features: int) -> bool:
    """Whether to show a bar: as asked, else for large modalities at scvi-tools' INFO verbosity."""
    if progress is not None:
        return bool(progress)
    from scvi import settings

    return settings.verbosity <= logging.INFO and n_features >= PROGRESS_MIN_FEATURES


class _Advance:
    """``advance(n, description=None)`` of a progress bar, counting what it has done."""

    def __init__(self, total: int, update: Callable[[int, str | None], None] | None):
        self.total, self.done, self._update = total, 0, update

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done)

    def __call__(self, n: int, description: str | None = None) -> None:
        n = min(int(n), self.remaining)
        self.done += n
        if self._update is not None:
            self._update(n, description)


@contextmanager
def _progress_bar(total: int, description: str, enabled: bool) -> Iterator[_Advance]:
    """A bar in ``scvi.settings.progress_bar_style`` (tqdm on stdout, as scvi-tools' ``track``)."""
    if not enabled:
        yield _Advance(total, None)
        return
    from scvi import settings

    if settings.progress_bar_style == "rich":
        from rich.progress import Progress

        with Progress() as bar:
            task = bar.add_task(description, total=total)
            yield _Advance(
                total,
                lambda n, text: bar.update(
                    task, advance=n, **({"description": text} if text else {})
                ),
            )
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=description, file=sys.stdout, unit="feature") as bar:

        def update(n: int, text: str | None) -> None:
            if text:
                bar.set_description(text, refresh=False)
            bar.update(n)

        yield _Advance(total, update)


def _describe_gene_sets(gene_sets, n_sets: int) -> str:
    if isinstance(gene_sets, str | PathLike):
        return str(gene_sets)
    return f"mapping of {n_sets} gene sets"

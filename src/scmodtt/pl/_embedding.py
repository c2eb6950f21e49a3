"""Real and synthetic cells embedded together: do the synthetic cells cover the real ones?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from matplotlib.axes import Axes
from mudata import MuData

from ..metrics._space import SharedSpace, _positions, as_space, checked_labels
from ._figure import (
    RIGHT_MARGIN,
    add_legend,
    category_colours,
    documents_show_save,
    finish,
    new_axes,
    ordered_categories,
    panel_axes,
)

#: What a panel can be coloured by: real vs synthetic, every cell's label, or one set's labels.
COLOR_KEYS = ("source", "label", "real", "synthetic")
BASES = ("umap", "pca")
SOURCE_COLOURS = {"real": "#a0a0a0", "synthetic": "#d62728"}
#: Colour of the cells a ``"real"`` or ``"synthetic"`` panel does not colour by label.
BACKGROUND_COLOUR = "#e5e5e5"
#: Largest default point size (scanpy's ``120000 / n_cells`` makes blots of a few hundred cells).
MAX_POINT_SIZE = 40.0
#: Most principal components the UMAP's neighbour graph is built on.
MAX_PCS = 30

CellsLike = MuData | SharedSpace | AnnData | np.ndarray


@dataclass(frozen=True, eq=False)
class _Cells:
    """One set of cells as values to embed, with feature names and annotations where known."""

    values: np.ndarray
    features: pd.Index | None
    obs: pd.DataFrame | None
    role: str

    def labels(self, labels_key: str) -> np.ndarray:
        if self.obs is None:
            raise ValueError(
                f"{self.role}: a matrix carries no labels. Pass an AnnData or MuData with "
                f"obs[{labels_key!r}], or colour by source only (color='source')."
            )
        return checked_labels(self.obs, labels_key, self.role, absent="is not a column of obs")

    def subset(self, cells: np.ndarray) -> _Cells:
        obs = None if self.obs is None else self.obs.iloc[cells]
        return _Cells(self.values[cells], self.features, obs, self.role)


@documents_show_save
def synthetic_embedding(
    real: CellsLike,
    synthetic: CellsLike,
    color: str | Sequence[str] = ("source", "label"),
    *,
    labels_key: str = "cell_type",
    basis: str = "umap",
    layer: str | None = None,
    max_cells: int | None = None,
    seed: int = 0,
    palette: Mapping[str, str] | None = None,
    size: float | None = None,
    legend_loc: str | None = RIGHT_MARGIN,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    **kwargs,
) -> Axes | list[Axes] | None:
    """Real and synthetic cells in one embedding, coloured by source and by label.

    Both sets are concatenated and embedded together (PCA, then for ``basis="umap"`` a
    neighbour graph on up to 30 PCs and UMAP, all seeded with scanpy), so a panel shows whether
    the synthetic cells fall where the real cells of their label are, and whether they cover all
    of the real cells' clusters.

    Parameters
    ----------
    real, synthetic
        The two sets of cells, each as

        - a MuData of raw counts (modalities ``rna`` and ``prot``, counts in ``.X``, e.g. from
          :meth:`scmodtt.MODTT.sample`) or a :class:`~scmodtt.metrics.SharedSpace`: embedded in
          the metrics' shared space (RNA ``log1p`` at 10⁴ counts per cell, ADT CLR);
        - an AnnData: ``.X`` or ``layers[layer]`` as given (pass normalized values, e.g. the
          ``"normalized"`` layer of ``model.sample(return_anndata=True)``);
        - a cells × features matrix, as given (no labels: ``color="source"`` only).

        Features are matched by name where both sets have names, else by position.
    color
        One panel per entry: ``"source"`` (real vs synthetic), ``"label"`` (every cell by its
        label), ``"real"`` or ``"synthetic"`` (that set's cells by label over all cells in light
        grey).
    labels_key
        Column of ``obs`` with the cell types (synthetic cells: the label they were generated
        for).
    basis
        ``"umap"`` or ``"pca"`` (the first two principal components; no neighbour graph).
    layer
        Layer of an AnnData input holding the values to embed; ``None`` uses ``.X``.
    max_cells
        Most cells of each set to embed, drawn with a generator seeded by ``seed``.
    seed
        Seed of the subsampling, PCA, neighbour graph, UMAP and drawing order.
    palette
        Colours by source (``"real"``, ``"synthetic"``) or label, overriding the defaults
        (grey and red; scanpy's default palettes for labels).
    size
        Point size; ``None`` is scanpy's ``120000 / n_cells``, at most 40.
    legend_loc
        ``"right margin"``, a matplotlib legend location, or ``None`` for no legend.
    ax
        Axes to draw on, one per entry of ``color``; ``None`` draws a new figure.
    show
        {show}
    save
        {save}
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` (e.g. ``alpha``).

    Returns
    -------
    The Axes (a list of them when ``color`` is a list) unless the figure was shown.

    Raises
    ------
    ValueError
        For an unknown ``color`` or ``basis``, a missing ``labels_key``, non-finite values, or
        synthetic cells that lack features of the real cells.

    Examples
    --------
    >>> import scmodtt
    >>> synthetic = model.sample(n_per_label=200, seed=0)  # doctest: +SKIP
    >>> scmodtt.pl.synthetic_embedding(test_cells, synthetic, max_cells=3000)  # doctest: +SKIP
    >>> scmodtt.pl.synthetic_embedding(
    ...     test_cells, synthetic, color=["source", "real", "synthetic"], basis="pca"
    ... )  # doctest: +SKIP

    """
    colors = [color] if isinstance(color, str) else list(color)
    unknown = [c for c in colors if c not in COLOR_KEYS]
    if unknown or not colors:
        raise ValueError(f"color must be one or more of {COLOR_KEYS}, got {color!r}.")
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}.")
    sets = _as_cells(real, "real", layer), _as_cells(synthetic, "synthetic", layer)
    sets = (sets[0], _matched_features(sets[1], sets[0]))
    if max_cells is not None:
        sets = tuple(cells.subset(_subsample(len(cells.values), max_cells, seed)) for cells in sets)
    needs_labels = any(c != "source" for c in colors)
    labels = np.concatenate([cells.labels(labels_key) for cells in sets]) if needs_labels else None
    source = np.repeat(["real", "synthetic"], [len(cells.values) for cells in sets])

    coordinates = _coordinates(np.vstack([cells.values for cells in sets]), basis, seed)
    axes = panel_axes(ax, len(colors), lambda: new_axes((4.8 * len(colors), 4.0), 1, len(colors)))
    style = {
        "s": min(MAX_POINT_SIZE, 120_000 / len(source)) if size is None else size,
        "linewidths": 0,
        "rasterized": True,
        **kwargs,
    }
    # A random drawing order, so that no label is always drawn on top of the others.
    order = np.random.default_rng(seed).permutation(len(source))
    axis_name = "UMAP" if basis == "umap" else "PC"
    for panel, key in zip(axes, colors, strict=True):
        if key == "source":
            colours = {name: (palette or {}).get(name, c) for name, c in SOURCE_COLOURS.items()}
            for name, colour in colours.items():
                panel.scatter(*coordinates[source == name].T, color=colour, label=name, **style)
            add_legend(panel, colours, legend_loc)
        else:
            categories = ordered_categories([cells.obs[labels_key] for cells in sets], labels)
            colours = category_colours(categories, palette)
            shown = order if key == "label" else order[source[order] == key]
            if key != "label":
                panel.scatter(*coordinates.T, color=BACKGROUND_COLOUR, **style)
            cell_colours = pd.Series(labels[shown]).map(colours).to_numpy()
            panel.scatter(*coordinates[shown].T, c=cell_colours, **style)
            add_legend(panel, colours, legend_loc, title=labels_key)
        panel.set_title({"real": "real cells", "synthetic": "synthetic cells"}.get(key, key))
        panel.set(xticks=[], yticks=[], xlabel=f"{axis_name}1", ylabel=f"{axis_name}2")
    return finish(
        axes[0] if isinstance(color, str) else axes,
        show,
        save,
        "synthetic_embedding",
        own_figure=ax is None,
    )


def _as_cells(data: CellsLike, role: str, layer: str | None) -> _Cells:
    if isinstance(data, MuData | SharedSpace):
        space = as_space(data, role)
        return _Cells(space.X, space.gene_names.append(space.protein_names), space.obs, role)
    if isinstance(data, AnnData):
        if layer is not None and layer not in data.layers:
            raise ValueError(
                f"{role}: layer {layer!r} not in .layers (layers: {list(data.layers)}); pass "
                "layer=None to embed .X."
            )
        matrix = data.X if layer is None else data.layers[layer]
        values = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
        cells = _Cells(values.astype(np.float64), pd.Index(data.var_names), data.obs, role)
    elif isinstance(data, np.ndarray):
        cells = _Cells(np.asarray(data, dtype=np.float64), None, None, role)
    else:
        raise TypeError(
            f"{role}: expected a MuData, SharedSpace, AnnData or matrix of cells, got "
            f"{type(data).__name__}."
        )
    if cells.values.ndim != 2:
        raise ValueError(f"{role}: expected cells × features, got shape {cells.values.shape}.")
    if not np.isfinite(cells.values).all():
        raise ValueError(
            f"{role}: values contain NaN or infinite entries; drop the affected cells first."
        )
    return cells


def _matched_features(synthetic: _Cells, real: _Cells) -> _Cells:
    """``synthetic`` with the real cells' features, in their order."""
    if real.features is not None and synthetic.features is not None:
        positions = _positions(synthetic.features, real.features, "synthetic: features")
        return _Cells(synthetic.values[:, positions], real.features, synthetic.obs, "synthetic")
    if synthetic.values.shape[1] != real.values.shape[1]:
        raise ValueError(
            f"real cells have {real.values.shape[1]} features but synthetic cells "
            f"{synthetic.values.shape[1]}; pass both with the same features (named, as AnnData "
            "or MuData, to match them by name)."
        )
    return synthetic


def _subsample(n_cells: int, max_cells: int, seed: int) -> np.ndarray:
    """Positions of at most ``max_cells`` of ``n_cells`` cells, seeded, in increasing order."""
    if n_cells <= max_cells:
        return np.arange(n_cells)
    return np.sort(np.random.default_rng(seed).choice(n_cells, size=max_cells, replace=False))


def _coordinates(values: np.ndarray, basis: str, seed: int) -> np.ndarray:
    """Cells × 2 coordinates of the embedding ``basis``."""
    if basis == "umap":
        return _umap_coordinates(values, seed)
    if min(values.shape) < 3:
        raise ValueError(
            f"basis='pca' needs at least 3 cells and 3 features, got {values.shape[0]} cells × "
            f"{values.shape[1]} features."
        )
    return _principal_components(values, 2, seed).obsm["X_pca"]


def _umap_coordinates(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D UMAP of cells × features: PCA (≤ 30) → neighbors → UMAP, all seeded."""
    import scanpy as sc

    n_comps = max(1, min(MAX_PCS, values.shape[0] - 1, values.shape[1] - 1))
    adata = _principal_components(values, n_comps, seed)
    sc.pp.neighbors(adata, n_neighbors=min(15, adata.n_obs - 1), random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    return adata.obsm["X_umap"]


def _principal_components(values: np.ndarray, n_comps: int, seed: int) -> AnnData:
    """A new AnnData of ``values`` with its first ``n_comps`` principal components (seeded)."""
    import scanpy as sc

    adata = AnnData(np.asarray(values, dtype=np.float32))
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    return adata

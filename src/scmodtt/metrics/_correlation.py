"""RNA–protein coupling metrics: ``cond_r`` (within cell types) and ``interact_r`` (between)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData

from ._cell_types import select_cell_types, type_codes
from ._pairs import PairsLike, pair_columns, pair_table
from ._space import SharedSpace, as_space
from ._stats import MIN_PEARSON_POINTS, grouped_mean, grouped_pearson, pearson, rowwise_pearson


class _ValueAsFloat:
    """``float(result)`` of a metric result is its ``value``."""

    value: float

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class CondRResult(_ValueAsFloat):
    """Result of :func:`cond_r`; ``float(result)`` is :attr:`~CondRResult.value`.

    Attributes
    ----------
    value
        Pearson correlation of ``r_real`` and ``r_synthetic`` over all defined (cell type, pair)
        entries; NaN if fewer than 3 entries are defined or either side is constant.
    r_real, r_synthetic
        Cell types × pairs (columns a ``(gene, protein)`` MultiIndex): within-type gene–protein
        Pearson correlations; NaN where undefined.
    excluded
        One row per (cell type, pair) left out because gene or protein is constant there:
        ``cell_type``, ``gene``, ``protein``, ``constant_in`` (``"real"``, ``"synthetic"`` or
        ``"both"``).
    cell_types
        ``cell_type``, ``n_real``, ``n_synthetic`` of the types used.
    skipped_cell_types
        ``cell_type``, ``n_real``, ``n_synthetic`` of types with fewer than ``min_cells`` cells in
        one of the sets.

    """

    value: float
    r_real: pd.DataFrame
    r_synthetic: pd.DataFrame
    excluded: pd.DataFrame
    cell_types: pd.DataFrame
    skipped_cell_types: pd.DataFrame

    @property
    def n_entries(self) -> int:
        """Number of (cell type, pair) entries the correlation is taken over."""
        return int(self.r_real.size - len(self.excluded))

    @property
    def entries(self) -> pd.DataFrame:
        """The (cell type, pair) entries the correlation is taken over, one row each.

        Columns ``cell_type``, ``gene``, ``protein``, ``real`` and ``synthetic`` (the two
        within-type correlations), cell types in the order of :attr:`r_real`, pairs in the order
        they were given; entries undefined in either set (see :attr:`excluded`) are left out.
        """
        real, synthetic = self.r_real.to_numpy(), self.r_synthetic.to_numpy()
        type_idx, pair_idx = np.nonzero(~(np.isnan(real) | np.isnan(synthetic)))
        pairs = self.r_real.columns
        return pd.DataFrame(
            {
                "cell_type": self.r_real.index.to_numpy()[type_idx],
                "gene": pairs.get_level_values("gene").to_numpy()[pair_idx],
                "protein": pairs.get_level_values("protein").to_numpy()[pair_idx],
                "real": real[type_idx, pair_idx],
                "synthetic": synthetic[type_idx, pair_idx],
            }
        )


@dataclass(frozen=True)
class InteractRResult(_ValueAsFloat):
    """Result of :func:`interact_r`; ``float(result)`` is :attr:`~InteractRResult.value`.

    Attributes
    ----------
    value
        Pearson correlation of ``I_real`` and ``I_synthetic`` over all cell-type pairs where both
        are defined; NaN if fewer than 3 are defined or either side is constant.
    interaction
        One row per unordered cell-type pair: ``cell_type_a``, ``cell_type_b``, ``real``,
        ``synthetic`` (``I(a, b)`` in each set; NaN where undefined).
    cell_types, skipped_cell_types
        As in :class:`CondRResult`.

    """

    value: float
    interaction: pd.DataFrame
    cell_types: pd.DataFrame
    skipped_cell_types: pd.DataFrame

    @property
    def n_excluded(self) -> int:
        """Cell-type pairs left out because ``I`` is undefined in one of the sets."""
        return int(self.interaction[["real", "synthetic"]].isna().any(axis=1).sum())


@dataclass(frozen=True, eq=False)
class _LabelledSet:
    """One of the two compared sets in the shared space, with its cell-type labels."""

    space: SharedSpace
    labels: np.ndarray
    role: str

    def paired_values(
        self, used: list[str], pairs: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values of each pair's gene and protein in the cells of the used types, and type codes."""
        gene_idx, protein_idx = pair_columns(pairs, self.space, self.role)
        keep, codes = type_codes(self.labels, used)
        return self.space.rna[:, gene_idx][keep], self.space.protein[:, protein_idx][keep], codes


def _labelled_sets(
    real: MuData | SharedSpace, synthetic: MuData | SharedSpace, labels_key: str
) -> tuple[_LabelledSet, _LabelledSet]:
    """Both sets in the shared space (real first), each with its checked labels."""
    real = as_space(real, "real")
    synthetic = as_space(synthetic, "synthetic")
    return (
        _LabelledSet(real, real.labels(labels_key, "real"), "real"),
        _LabelledSet(synthetic, synthetic.labels(labels_key, "synthetic"), "synthetic"),
    )


def _warn_undefined(metric: str, n_defined: int, what: str) -> None:
    warnings.warn(
        f"{metric} is NaN: only {n_defined} {what} have a defined correlation in both sets "
        f"(need >= {MIN_PEARSON_POINTS}) or one side does not vary.",
        UserWarning,
        stacklevel=3,
    )


def cond_r(
    real: MuData | SharedSpace,
    synthetic: MuData | SharedSpace,
    pairs: PairsLike,
    labels_key: str = "cell_type",
    min_cells: int = 20,
) -> CondRResult:
    """Conditional RNA–protein correlation: does a generator keep each type's gene–protein coupling?

    Definition (``docs/user_guide/metrics.md``). For each cell type ``c`` with at least
    ``min_cells`` cells in both sets and each matched pair ``k`` (gene, protein)::

        r_real[c, k] = Pearson(gene_k, protein_k) across the real cells of type c
        r_syn[c, k]  = Pearson(gene_k, protein_k) across the synthetic cells of type c
        cond_r       = Pearson(r_real, r_syn) over all (c, k)

    in the shared space (RNA ``log1p`` at 10⁴ counts per cell, ADT per-cell CLR). Synthetic
    cells are grouped by their conditioning label.

    Edge cases: an entry where gene or protein is constant among the cells of ``c`` in either
    set (Pearson undefined) is excluded and listed in ``excluded``. Cell types below
    ``min_cells`` in either set are listed in ``skipped_cell_types`` and warned about
    (:class:`SkippedCellTypesWarning`). Fewer than 3 defined entries give NaN with a warning.

    Parameters
    ----------
    real
        Real (held-out test) cells: MuData of raw counts (modalities ``rna``, ``prot``, counts in
        ``.X``) or a :class:`SharedSpace` (for other modality names or a counts layer).
    synthetic
        Synthetic cells, same form; labels are the labels they were generated for.
    pairs
        ``(gene, protein)`` tuples or a DataFrame with columns ``gene``, ``protein``.
    labels_key
        Cell-type column in ``mdata.obs`` (or, failing that, ``mdata['rna'].obs``).
    min_cells
        Fewest cells of a type in each set for the type to be used.

    Returns
    -------
    :class:`CondRResult`.

    Raises
    ------
    ValueError
        Missing ``labels_key`` or labels, no pairs, pair features not measured, no cell type with
        ``min_cells`` cells in both sets, NaN or negative counts.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata, toy_pairs
    >>> result = cond_r(toy_cite_mudata(seed=1), toy_cite_mudata(seed=2), toy_pairs())
    >>> result.value > 0.5, result.r_real.shape, len(result.skipped_cell_types)
    (True, (3, 6), 0)

    """
    pairs = pair_table(pairs)
    sets = _labelled_sets(real, synthetic, labels_key)
    selection = select_cell_types(*(labelled.labels for labelled in sets), min_cells, "cond_r")
    n_types = len(selection.used)

    r_real, r_synthetic = (
        grouped_pearson(*labelled.paired_values(selection.used, pairs), n_types)
        for labelled in sets
    )

    undefined_real = np.isnan(r_real)
    undefined_synthetic = np.isnan(r_synthetic)
    defined = ~(undefined_real | undefined_synthetic)
    value = pearson(r_real[defined], r_synthetic[defined])
    if np.isnan(value):
        _warn_undefined("cond_r", int(defined.sum()), "(cell type, pair) entries")

    type_idx, pair_idx = np.nonzero(~defined)
    constant_in = np.where(
        undefined_real[type_idx, pair_idx] & undefined_synthetic[type_idx, pair_idx],
        "both",
        np.where(undefined_real[type_idx, pair_idx], "real", "synthetic"),
    )
    excluded = pd.DataFrame(
        {
            "cell_type": np.asarray(selection.used, dtype=object)[type_idx],
            "gene": pairs["gene"].to_numpy()[pair_idx],
            "protein": pairs["protein"].to_numpy()[pair_idx],
            "constant_in": constant_in,
        }
    )
    index = pd.Index(selection.used, name="cell_type")
    columns = pd.MultiIndex.from_frame(pairs)
    return CondRResult(
        value=value,
        r_real=pd.DataFrame(r_real, index=index, columns=columns),
        r_synthetic=pd.DataFrame(r_synthetic, index=index, columns=columns),
        excluded=excluded,
        cell_types=selection.counts,
        skipped_cell_types=selection.skipped,
    )


def interact_r(
    real: MuData | SharedSpace,
    synthetic: MuData | SharedSpace,
    pairs: PairsLike,
    labels_key: str = "cell_type",
    min_cells: int = 20,
) -> InteractRResult:
    """Between-type RNA–protein agreement: do genes and proteins separate cell types alike?

    Definition (``docs/user_guide/metrics.md``). For each unordered pair of cell types ``(a, b)``
    with at least ``min_cells`` cells of each type in both sets, and each matched pair ``k``::

        ΔRNA_k = mean of gene_k over cells of a − mean over cells of b
        ΔADT_k = mean of protein_k over cells of a − mean over cells of b
        I(a, b) = Pearson over k of ΔRNA and ΔADT
        interact_r = Pearson(I_real, I_syn) over all type pairs (a, b)

    in the shared space; vectorised over type pairs. ``I(a, b) = I(b, a)`` so each unordered pair
    counts once.

    Edge cases: a type pair whose ΔRNA or ΔADT is constant over ``k`` in either set (I
    undefined) is excluded (NaN in ``interaction``, counted by ``n_excluded``). Fewer than 3
    defined type pairs (e.g. only 2 cell types) give NaN with a warning. Cell types below
    ``min_cells`` are reported in ``skipped_cell_types`` and warned about.

    Parameters
    ----------
    real, synthetic, pairs, labels_key, min_cells
        As in :func:`cond_r`. At least 3 pairs are needed (I is a correlation over pairs).

    Returns
    -------
    :class:`InteractRResult`.

    Raises
    ------
    ValueError
        As :func:`cond_r`; also fewer than 3 pairs or fewer than 2 usable cell types.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata, toy_pairs
    >>> result = interact_r(toy_cite_mudata(seed=1), toy_cite_mudata(seed=2), toy_pairs())
    >>> result.value > 0.5, len(result.interaction)  # 3 cell types give 3 type pairs
    (True, 3)

    """
    pairs = pair_table(pairs)
    if len(pairs) < MIN_PEARSON_POINTS:
        raise ValueError(
            f"interact_r correlates over RNA–protein pairs and needs >= {MIN_PEARSON_POINTS} "
            f"pairs, got {len(pairs)}. Use cond_r for fewer pairs."
        )
    sets = _labelled_sets(real, synthetic, labels_key)
    selection = select_cell_types(*(labelled.labels for labelled in sets), min_cells, "interact_r")
    n_types = len(selection.used)
    if n_types < 2:
        raise ValueError(
            f"interact_r compares cell types and needs >= 2 types with >= {min_cells} cells in "
            f"both sets, got {selection.used}. Lower min_cells or generate more cell types."
        )

    type_a, type_b = np.triu_indices(n_types, k=1)
    interaction = []
    for labelled in sets:
        genes, proteins, codes = labelled.paired_values(selection.used, pairs)
        gene_means = grouped_mean(genes, codes, n_types)
        protein_means = grouped_mean(proteins, codes, n_types)
        interaction.append(
            rowwise_pearson(
                gene_means[type_a] - gene_means[type_b],
                protein_means[type_a] - protein_means[type_b],
            )
        )
    i_real, i_synthetic = interaction
    defined = ~(np.isnan(i_real) | np.isnan(i_synthetic))
    value = pearson(i_real[defined], i_synthetic[defined])
    if np.isnan(value):
        _warn_undefined("interact_r", int(defined.sum()), "cell-type pairs")

    used = np.asarray(selection.used, dtype=object)
    return InteractRResult(
        value=value,
        interaction=pd.DataFrame(
            {
                "cell_type_a": used[type_a],
                "cell_type_b": used[type_b],
                "real": i_real,
                "synthetic": i_synthetic,
            }
        ),
        cell_types=selection.counts,
        skipped_cell_types=selection.skipped,
    )

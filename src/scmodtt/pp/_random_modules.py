"""Size-matched random modules: the ablation that tests whether module structure matters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._membership import numbered_names


def shuffled_membership(
    membership: pd.DataFrame, residual: str, rng: np.random.Generator, prefix: str
) -> pd.DataFrame:
    """Give each feature the module memberships of another feature, chosen at random.

    Permuting the rows of the membership table keeps every module's size exactly, and the number
    of modules per feature (so overlapping gene sets stay overlapping). Features of the residual
    module stay there: they are the ones the source partition could not place (constant on the
    cells, or in no gene set), not part of the grouping being ablated.

    Parameters
    ----------
    membership
        Boolean features × modules table.
    residual
        Name of the residual column (may be absent from ``membership``).
    rng
        Random generator.
    prefix
        Random modules are named ``{prefix}00, {prefix}01, …``.

    """
    values = membership.to_numpy(dtype=bool)
    is_module = np.asarray(membership.columns != residual)
    if residual in membership:
        movable = np.flatnonzero(~membership[residual].to_numpy(dtype=bool))
    else:
        movable = np.arange(len(membership))
    shuffled = values.copy()
    shuffled[np.ix_(movable, is_module)] = values[np.ix_(rng.permutation(movable), is_module)]
    random_names = iter(numbered_names(prefix, int(is_module.sum())))
    columns = [next(random_names) if module else residual for module in is_module]
    return pd.DataFrame(shuffled, index=membership.index, columns=columns)

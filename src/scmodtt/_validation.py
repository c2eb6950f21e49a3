"""Input checks shared across scmodtt's subpackages."""

from __future__ import annotations

from anndata import AnnData


def layer_matrix(
    adata: AnnData,
    layer: str | None,
    missing_message: str,
    error: type[Exception] = ValueError,
):
    """Return ``adata.X`` (``layer=None``) or ``adata.layers[layer]``.

    Parameters
    ----------
    adata
        One modality.
    layer
        Layer to read, or ``None`` for ``.X``.
    missing_message
        Message of the error raised when ``layer`` is not in ``adata.layers``; each caller words
        it for its own users.
    error
        Exception class raised for a missing layer.

    """
    if layer is None:
        return adata.X
    if layer in adata.layers:
        return adata.layers[layer]
    raise error(missing_message)


def missing_and_extra(expected, observed):
    """Names in ``expected`` only and names in ``observed`` only (two :class:`pandas.Index`).

    Error messages about features or cells that do not match name both sides, so that the user
    sees what to add and what to drop.
    """
    return expected.difference(observed), observed.difference(expected)

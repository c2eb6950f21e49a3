"""Input checks shared across scmodtt's subpackages."""

from __future__ import annotations

from anndata import AnnData


def layer_matrix(adata: AnnData, layer: str | None, missing_message: str):
    """Return ``adata.X`` (``layer=None``) or ``adata.layers[layer]``.

    Parameters
    ----------
    adata
        One modality.
    layer
        Layer to read, or ``None`` for ``.X``.
    missing_message
        Message of the :class:`ValueError` raised when ``layer`` is not in ``adata.layers``; each
        caller words it for its own users.

    """
    if layer is None:
        return adata.X
    if layer in adata.layers:
        return adata.layers[layer]
    raise ValueError(missing_message)

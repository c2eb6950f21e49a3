"""On-disk stores of paired counts for training MODTT on data that does not fit in memory."""

from ._store import read_h5mu_store, write_h5mu_store

__all__ = ["read_h5mu_store", "write_h5mu_store"]

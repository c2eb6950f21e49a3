"""scmodtt: modular Tensor-Train generative models of paired RNA + protein single-cell data."""

from importlib.metadata import version

from . import datasets, io, metrics, pl, pp
from .model import MODTT

__version__ = version("scmodtt")

__all__ = ["MODTT", "benchmark", "datasets", "io", "metrics", "pl", "pp"]


def __getattr__(name: str):
    # The benchmark pulls in every baseline model; import it only when it is asked for.
    if name == "benchmark":
        import importlib

        return importlib.import_module(".benchmark", __name__)
    raise AttributeError(f"module 'scmodtt' has no attribute {name!r}")

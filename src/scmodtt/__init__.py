"""scmodtt: modular Tensor-Train generative models of paired RNA + protein single-cell data."""

from importlib.metadata import version

from .model import MODTT

__version__ = version("scmodtt")

__all__ = ["MODTT"]

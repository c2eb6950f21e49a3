from ._modtt import MODTT

__all__ = ["MODTT"]

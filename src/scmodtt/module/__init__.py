from ._modttvae import MODTTVAE

__all__ = ["MODTTVAE"]

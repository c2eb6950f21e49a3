"""Layers of MODTT: batched per-module encoders/decoders and token couplings."""

from ._adapters import TokenAdapter
from ._coupling import COUPLINGS, TokenCoupling
from ._modular import ModularDecoder, ModularEncoder

__all__ = ["COUPLINGS", "ModularDecoder", "ModularEncoder", "TokenAdapter", "TokenCoupling"]

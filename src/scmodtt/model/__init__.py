from ._hub import read_hub_model, to_hub_model
from ._modtt import MODTT

__all__ = ["MODTT", "read_hub_model", "to_hub_model"]

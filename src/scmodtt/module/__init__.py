from ._modttvae import MODTTVAE
from ._priors import ConditionalFlowPrior, LabelGaussianPrior, LibraryGaussianPrior

__all__ = ["MODTTVAE", "ConditionalFlowPrior", "LabelGaussianPrior", "LibraryGaussianPrior"]

"""Benchmark MODTT side by side with flat, scVI, totalVI, linear and oracle generators.

Each model is described once, in :data:`MODELS` (how it is built and trained, its generation
protocols, whether it is sized to parameter budgets); each generation protocol once, in
:data:`PROTOCOLS`. The metrics are defined on the metrics page of the user guide
(``docs/user_guide/metrics.md``).
"""

from ._budget import BudgetSolver, parse_budget
from ._protocols import (
    PROTOCOLS,
    generate_latent_flow,
    generate_latent_gaussian,
    generate_linear,
    generate_native,
    generate_oracle,
)
from ._report import write_report
from ._run import DEFAULT_MODELS, run
from ._speed import SPEED_MODELS, measure_training_speed, speed
from ._stats import paired_differences
from ._timing import EpochTimer
from ._transfer import TRANSFER_METHODS, transfer
from ._zoo import MODELS, ModelSpec, build_model

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "PROTOCOLS",
    "SPEED_MODELS",
    "TRANSFER_METHODS",
    "BudgetSolver",
    "EpochTimer",
    "ModelSpec",
    "build_model",
    "generate_latent_flow",
    "generate_latent_gaussian",
    "generate_linear",
    "generate_native",
    "generate_oracle",
    "measure_training_speed",
    "paired_differences",
    "parse_budget",
    "run",
    "speed",
    "transfer",
    "write_report",
]

"""Benchmark MODTT side by side with flat, scVI, totalVI, linear and oracle generators.

See DESIGN.md §4.
"""

from ._budget import BudgetSolver, parse_budget
from ._protocols import (
    PROTOCOLS,
    generate_latent_gaussian,
    generate_linear,
    generate_native,
    generate_oracle,
)
from ._report import write_report
from ._run import DEFAULT_MODELS, run
from ._speed import measure_training_speed
from ._stats import paired_differences
from ._timing import EpochTimer
from ._zoo import MODELS, build_model

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "PROTOCOLS",
    "BudgetSolver",
    "EpochTimer",
    "build_model",
    "generate_latent_gaussian",
    "generate_linear",
    "generate_native",
    "generate_oracle",
    "measure_training_speed",
    "paired_differences",
    "parse_budget",
    "run",
    "write_report",
]

"""Pick MODTT/flat sizes that land on a target parameter count, so architectures compare fairly.

Counts come from instantiating the torch module itself (cheap: no data), so they are exactly what
:meth:`scmodtt.MODTT.parameter_counts` reports after training.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..module import MODTTVAE

#: Relative distance to the target that counts as "on budget".
BUDGET_TOLERANCE = 0.10
_MAX_MODULE_DIM = 96
_MAX_TT_RANK = 96
_MAX_HIDDEN = 4096


def parse_budget(text: str | int) -> int:
    """``"60k"`` → 60000, ``"1m"`` → 1000000, ``200000`` → 200000."""
    if isinstance(text, int | np.integer):
        return int(text)
    value = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in "km" else value
    try:
        return int(round(float(number) * scale))
    except ValueError as error:
        raise ValueError(
            f"Cannot read parameter budget {text!r}; write e.g. 60k, 200000 or 1m."
        ) from error


class BudgetSolver:
    """Sizes of each architecture for a data shape.

    The shape is given by features, modules, batches, labels and likelihoods.
    """

    def __init__(self, **module_kwargs):
        # Everything MODTTVAE needs except the size hyper-parameters being searched.
        self.module_kwargs = module_kwargs
        self._count = lru_cache(maxsize=None)(self._count_uncached)

    def _count_uncached(
        self, architecture: str, coupling: str, module_dim: int, tt_rank: int, n_hidden: int
    ) -> int:
        module = MODTTVAE(
            **self.module_kwargs,
            architecture=architecture,
            coupling=coupling,
            module_dim=module_dim,
            tt_rank=tt_rank,
            n_hidden=n_hidden,
        )
        return int(sum(p.numel() for p in module.parameters() if p.requires_grad))

    def count(
        self,
        architecture: str,
        coupling: str = "tt",
        module_dim: int = 4,
        tt_rank: int = 4,
        n_hidden: int = 22,
    ) -> int:
        """Trainable parameters of one configuration."""
        return self._count(architecture, coupling, module_dim, tt_rank, n_hidden)

    def solve(self, variant: str, target: int) -> tuple[dict, int]:
        """Configuration of ``variant`` ("tt", "dense" or "flat") closest to ``target`` parameters.

        For the Tensor-Train coupling several (module_dim, rank) pairs reach a budget; the one whose
        rank is closest to its module_dim is taken, a balanced factorisation.

        Raises
        ------
        ValueError
            If no configuration lies within :data:`BUDGET_TOLERANCE` of ``target``.

        """
        candidates = self._candidates(variant, target)
        within = [
            (kwargs, n) for kwargs, n in candidates if abs(n - target) <= BUDGET_TOLERANCE * target
        ]
        if not within:
            counts = sorted({n for _, n in candidates})
            below = [n for n in counts if n < target]
            above = [n for n in counts if n > target]
            if not below and target < self.smallest(variant):
                advice = f"the smallest {variant!r} model has {self.smallest(variant):,}"
            else:
                # Dense coupling grows in steps of module_dim: a budget can fall between two.
                nearest = [f"{n:,}" for n in (below[-1:] + above[:1])]
                advice = (
                    f"the nearest {variant!r} configurations have {' and '.join(nearest)}; "
                    "choose a budget within 10% of one of them"
                )
            raise ValueError(
                f"No {variant!r} configuration has {target:,} parameters "
                f"(±{BUDGET_TOLERANCE:.0%}) on this data: {advice}."
            )
        if variant == "tt":
            kwargs, n = min(
                within,
                key=lambda c: (abs(c[0]["tt_rank"] - c[0]["module_dim"]), abs(c[1] - target)),
            )
        else:
            kwargs, n = min(within, key=lambda c: abs(c[1] - target))
        return kwargs, n

    def smallest(self, variant: str) -> int:
        """Fewest parameters ``variant`` can have on this data."""
        if variant == "flat":
            return self.count("flat", n_hidden=1)
        return self.count("modular", variant, module_dim=1, tt_rank=1)

    def _candidates(self, variant: str, target: int) -> list[tuple[dict, int]]:
        if variant == "flat":
            # Parameters are affine in the hidden width: two counts give the line, then check.
            base, slope = (
                self.count("flat", n_hidden=1),
                self.count("flat", n_hidden=2) - self.count("flat", n_hidden=1),
            )
            width = int(np.clip(round((target - base) / slope) + 1, 1, _MAX_HIDDEN))
            return [
                ({"n_hidden": w}, self.count("flat", n_hidden=w))
                for w in {max(width - 1, 1), width, width + 1}
            ]
        candidates = []
        for module_dim in range(1, _MAX_MODULE_DIM + 1):
            if variant == "dense":
                n = self.count("modular", "dense", module_dim=module_dim)
                candidates.append(({"module_dim": module_dim}, n))
                if n > target * (1 + BUDGET_TOLERANCE):
                    break
                continue
            # TT parameters are affine in the rank for a fixed module_dim.
            one, two = (
                self.count("modular", "tt", module_dim, 1),
                self.count("modular", "tt", module_dim, 2),
            )
            if one > target * (1 + BUDGET_TOLERANCE):
                break
            rank = int(np.clip(round((target - one) / max(two - one, 1)) + 1, 1, _MAX_TT_RANK))
            candidates.append(
                (
                    {"module_dim": module_dim, "tt_rank": rank},
                    self.count("modular", "tt", module_dim, rank),
                )
            )
        return candidates

    @classmethod
    def from_model(cls, model) -> BudgetSolver:
        """Solver for the data shape, modules and likelihoods of a (modular) MODTT model."""
        module = model.module
        if module.architecture != "modular":
            raise ValueError("Build the solver from a modular MODTT: it carries the module layout.")
        encoder = module.module_encoder
        return cls(
            n_genes=module.n_genes,
            n_proteins=module.n_proteins,
            n_batch=module.n_batch,
            n_labels=module.n_labels,
            feature_index=encoder.feature_index.cpu().numpy(),
            module_index=encoder.module_index.cpu().numpy(),
            n_modules=encoder.n_modules,
            n_latent=module.n_latent,
            gene_likelihood=module.gene_likelihood.likelihood,
            protein_likelihood=module.protein_likelihood.likelihood,
            use_label_prior=module.use_label_prior,
        )

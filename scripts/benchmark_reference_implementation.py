"""The benchmark with MODTT's dense reference computations instead of its fast paths.

The speed work replaced two computations with cheaper equal ones: likelihoods evaluated per
non-zero count (``scmodtt.module._likelihoods``), the Tensor-Train coupling contracted core by
core where that is cheaper (``scmodtt.nn._coupling``), and NB counts drawn by a sparse inverse CDF
(``scmodtt.module._sampling``). Each is equal to the dense computation within float tolerance (the
sampler: in distribution) by test; this script checks that the *benchmark metrics* do not move
either, by running ``scmodtt-benchmark`` with the dense scvi-tools log-probabilities, the rebuilt
TT map and torch's gamma-Poisson draws everywhere. Pair its folder with a normal run on the same
seeds::

    .venv/bin/scmodtt-benchmark --data reapseq_pbmc --exclude-labels doublet-like,low_quality \
        --min-cells-per-label 40 --seeds 3 --models modtt-tt --out results/reapseq_fast --no-report
    .venv/bin/python scripts/benchmark_reference_implementation.py --data reapseq_pbmc \
        --exclude-labels doublet-like,low_quality --min-cells-per-label 40 --seeds 3 \
        --models modtt-tt --out results/reapseq_reference_implementation --no-report
    .venv/bin/python scripts/compare_runs.py results/reapseq_fast \
        results/reapseq_reference_implementation

Every argument is passed to ``scmodtt-benchmark``.
"""

from __future__ import annotations

import sys
from unittest import mock

from scmodtt.benchmark._cli import main


def never(*args, **kwargs) -> bool:
    return False


def gamma_poisson_draw(distribution):
    return distribution.sample()


if __name__ == "__main__":
    # `_fast_path` False: every likelihood runs its scvi-tools parent's dense `log_prob`;
    # `tt_contraction_is_cheaper` False: the TT map is always rebuilt and applied as a matrix;
    # `_draw`: torch.distributions' own (gamma-Poisson) sampler for every count.
    with (
        mock.patch("scmodtt.module._likelihoods._fast_path", never),
        mock.patch("scmodtt.nn._coupling.tt_contraction_is_cheaper", never),
        mock.patch("scmodtt.module._modttvae._draw", gamma_poisson_draw),
    ):
        main(sys.argv[1:])

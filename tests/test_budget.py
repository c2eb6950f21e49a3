"""Parameter budgets of the benchmark: :class:`BudgetSolver` and budget runs on ``tiny_cite``.

A small run sizes the MODTT and flat architectures to two budgets, one of which the dense coupling
cannot reach; both budgets are found with the solver on the same seed's data, never written down.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pandas as pd
import pytest
from _benchmark_common import (
    DATASET,
    LABELS_KEY,
    QUICK,
    RUN_LOGGER,
    SIZED,
    ListHandler,
    fit_with_modules,
    load_seed_context,
    read_metadata,
    read_results,
)

from scmodtt.benchmark import BudgetSolver, parse_budget, run
from scmodtt.benchmark._budget import BUDGET_TOLERANCE
from scmodtt.benchmark._zoo import build_model, n_parameters


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def seed_context():
    """Seed 0's split, features and Ward modules of ``tiny_cite``, as :func:`run` builds them."""
    return load_seed_context()


@pytest.fixture(scope="module")
def solver(seed_context):
    """Budget solver for seed 0's data, built from a modular MODTT like the benchmark's."""
    probe = build_model("modtt-tt", fit_with_modules(seed_context), labels_key=LABELS_KEY)
    return BudgetSolver.from_model(probe)


def _reaches(solver: BudgetSolver, variant: str, target: int) -> bool:
    try:
        solver.solve(variant, target)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def budgets(solver):
    """(budget all three architectures reach, budget TT and flat reach but dense does not).

    Dense coupling grows in coarse steps of ``module_dim``: a budget between two consecutive dense
    sizes, more than the tolerance away from both, is out of its reach.
    """
    dense = [solver.count("modular", "dense", module_dim=d) for d in range(1, 8)]
    reachable = next(
        n for n in dense if all(_reaches(solver, v, n) for v in ("tt", "flat", "dense"))
    )
    for low, high in zip(dense, dense[1:], strict=False):
        lowest, highest = low / (1 - BUDGET_TOLERANCE), high / (1 + BUDGET_TOLERANCE)
        if lowest < highest:
            gap = int(np.sqrt(lowest * highest))
            if not _reaches(solver, "dense", gap) and all(
                _reaches(solver, v, gap) for v in ("tt", "flat")
            ):
                return str(reachable), str(gap)
    pytest.fail(f"No budget in the dense coupling's gaps on this data (dense sizes {dense}).")


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory, budgets):
    """Output folder and warnings of a benchmark of the three sized models at both budgets."""
    out = tmp_path_factory.mktemp("budgets") / "out"
    handler = ListHandler()
    logger = logging.getLogger(RUN_LOGGER)
    logger.addHandler(handler)
    try:
        run(
            data=DATASET,
            models=list(SIZED),
            seeds=1,
            budgets=list(budgets),
            out=out,
            **QUICK,
        )
    finally:
        logger.removeHandler(handler)
    return out, [record.getMessage() for record in handler.records]


# ---------------------------------------------------------------------- budgets
def test_budget_runs_land_on_target(budget_run, budgets, solver):
    """Every sized run has its solver's count, within the tolerance of its budget."""
    out, _ = budget_run
    rows = read_results(out)[["model", "budget", "n_params"]].drop_duplicates()
    assert set(rows["budget"]) == set(budgets)
    assert not rows.duplicated(["model", "budget"]).any()
    for model, budget, n_params in rows.itertuples(index=False):
        target = parse_budget(budget)
        assert abs(n_params - target) <= BUDGET_TOLERANCE * target, (model, budget, n_params)
        assert n_params == solver.solve(SIZED[model], target)[1], (model, budget)


def test_unreachable_budget_is_skipped_and_reported(budget_run, budgets):
    """Dense at the budget it cannot reach is skipped with a warning and a metadata entry."""
    out, warnings = budget_run
    reachable, gap = budgets
    ran = set(read_results(out)[["model", "budget"]].itertuples(index=False, name=None))
    expected = {(model, budget) for model in SIZED for budget in budgets} - {("modtt-dense", gap)}
    assert ran == expected
    assert [w for w in warnings if "skipped" in w] == [
        w for w in warnings if w.startswith(f"modtt-dense at budget {gap} skipped")
    ]
    assert len([w for w in warnings if "skipped" in w]) == 1
    runs = read_metadata(out)["runs"]
    skipped = [r for r in runs if r.get("skipped")]
    assert [(r["model"], r["budget"]) for r in skipped] == [("modtt-dense", gap)]
    assert "No 'dense' configuration" in skipped[0]["reason"]
    trained = {(r["model"], r["budget"]) for r in runs if not r.get("skipped")}
    assert trained == expected


def test_rerun_does_not_repeat_skipped_runs(budget_run, budgets, tmp_path):
    """Resuming a run with an unreachable budget trains nothing and records the skip once."""
    out, _ = budget_run
    again = tmp_path / "again"
    shutil.copytree(out, again)
    run(data=DATASET, models=list(SIZED), seeds=1, budgets=list(budgets), out=again, **QUICK)
    pd.testing.assert_frame_equal(read_results(again), read_results(out))
    assert read_metadata(again)["runs"] == read_metadata(out)["runs"]


def test_gap_budget_message_names_the_nearest_sizes(solver, budgets):
    """A budget between two dense sizes names both neighbours, not a range it already lies in."""
    _, gap = budgets
    dense = [solver.count("modular", "dense", module_dim=d) for d in range(1, 8)]
    below = max(n for n in dense if n < int(gap))
    above = min(n for n in dense if n > int(gap))
    message = f"nearest 'dense' configurations have {below:,} and {above:,}"
    with pytest.raises(ValueError, match=message):
        solver.solve("dense", int(gap))


def test_budget_no_architecture_reaches(tmp_path, solver):
    """A budget below every architecture's smallest size is an error, before any training."""
    assert min(solver.smallest(v) for v in ("tt", "dense", "flat")) > 500 * (1 + BUDGET_TOLERANCE)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="No requested architecture reaches the budget '500'"):
        run(
            data=DATASET,
            models=[*SIZED, "linear"],
            seeds=1,
            budgets=["500"],
            out=out,
            **QUICK,
        )
    assert not (out / "results.csv").exists()


# ---------------------------------------------------------------------- BudgetSolver
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60k", 60_000),
        ("1m", 1_000_000),
        ("200000", 200_000),
        (200_000, 200_000),
        (" 2.5K ", 2_500),
        (np.int64(7), 7),
    ],
)
def test_parse_budget(text, expected):
    """Suffixes k and m scale; plain numbers and integers pass through."""
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["lots", "1x", "k", ""])
def test_parse_budget_bad_text(text):
    """Text that is not a number with an optional k/m suffix is refused."""
    with pytest.raises(ValueError, match="Cannot read parameter budget"):
        parse_budget(text)


def _target(solver: BudgetSolver, variant: str) -> int:
    """A budget ``variant`` reaches: dense at one of its own sizes, the others at 3× their least."""
    if variant == "dense":
        return solver.count("modular", "dense", module_dim=3)
    return 3 * solver.smallest(variant)


@pytest.mark.parametrize("variant", ["tt", "dense", "flat"])
def test_solve_within_tolerance(solver, variant):
    """The configuration found has the count returned, within the tolerance of the target."""
    target = _target(solver, variant)
    kwargs, n = solver.solve(variant, target)
    assert abs(n - target) <= BUDGET_TOLERANCE * target
    expected_keys = {"tt": {"module_dim", "tt_rank"}, "dense": {"module_dim"}, "flat": {"n_hidden"}}
    assert set(kwargs) == expected_keys[variant]
    if variant == "flat":
        assert solver.count("flat", **kwargs) == n
    else:
        assert solver.count("modular", variant, **kwargs) == n


@pytest.mark.parametrize("variant", ["tt", "dense", "flat"])
def test_solved_count_matches_built_model(solver, seed_context, variant):
    """A model built with the solved configuration has exactly the solver's count."""
    kwargs, n = solver.solve(variant, _target(solver, variant))
    name = "flat" if variant == "flat" else f"modtt-{variant}"
    model = build_model(name, fit_with_modules(seed_context), labels_key=LABELS_KEY, **kwargs)
    assert n_parameters(model) == n


@pytest.mark.parametrize("variant", ["tt", "dense", "flat"])
def test_smallest(solver, variant):
    """The smallest size is the size-1 configuration; well below it nothing is on budget."""
    smallest = solver.smallest(variant)
    if variant == "flat":
        assert smallest == solver.count("flat", n_hidden=1) < solver.count("flat", n_hidden=2)
    else:
        one = solver.count("modular", variant, module_dim=1, tt_rank=1)
        assert smallest == one < solver.count("modular", variant, module_dim=2, tt_rank=1)
    _, n = solver.solve(variant, smallest)
    assert abs(n - smallest) <= BUDGET_TOLERANCE * smallest
    with pytest.raises(ValueError, match=f"No '{variant}' configuration has"):
        solver.solve(variant, int(smallest / (1 + 2 * BUDGET_TOLERANCE)))


def test_solver_needs_a_modular_model(seed_context):
    """A flat model has no module layout to size the modular architectures from."""
    flat = build_model("flat", fit_with_modules(seed_context), labels_key=LABELS_KEY)
    with pytest.raises(ValueError, match="Build the solver from a modular MODTT"):
        BudgetSolver.from_model(flat)

"""Execute every tutorial notebook from top to bottom; any cell error fails its test.

The notebooks are found in ``tutorials/`` at collection time, one test per notebook. With no
notebooks there, this file collects no tests. Execution reuses
:func:`execute_notebook` of ``scripts/run_notebooks.py`` (the script behind ``make notebooks``),
so the tests run the notebooks exactly as the documented command does, without storing outputs.
Deselect with ``-m "not notebooks"``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_runner():
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "scripts" / "run_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_notebooks = _load_runner()
NOTEBOOKS = run_notebooks.find_notebooks(ROOT / "tutorials")

if NOTEBOOKS:  # no notebooks: no test items (rather than one skipped "empty parameter set" item)

    @pytest.mark.notebooks
    @pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
    def test_notebook_runs(notebook: Path):
        seconds = run_notebooks.execute_notebook(notebook, write=False)
        print(f"{notebook.name}: {seconds:.1f} s")

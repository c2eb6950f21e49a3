# Two commands set up everything on a fresh machine: `make demo` and `make test`.
# Every install goes through constraints.txt, which pins the CPU build of torch (torch==2.13.0).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test test-fast docs notebooks lint

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[test,doc,dev,transfer]"
	touch $(STAMP)

install: $(STAMP)

## The main job: the quick benchmark on the bundled real data (report and figures in results/quick).
demo: $(STAMP)
	$(BIN)/scmodtt-benchmark --preset quick --out results/quick

## The whole test suite, notebooks and slow tests included (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not notebooks"

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

## Re-execute the tutorials and store their outputs.
notebooks: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py --write

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

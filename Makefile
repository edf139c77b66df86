# bayesdistill: two commands after cloning, `make demo` and `make test`.
# Each creates .venv and installs the package (editable, with the test extras) when missing.
# The Python is the newest supported one (3.13, then 3.12) that .ci/find-python finds: on PATH, in
# pyenv's versions folder (found directly, so an empty HOME does not matter), /usr/local/bin, /usr/bin
# or by uv; choose another with `make test PYTHON=/path/to/python3.12` (after `make clean` if .venv exists).
SUPPORTED := import sys; sys.exit(not (3, 12) <= sys.version_info[:2] <= (3, 13))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell .ci/find-python 2>/dev/null)
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean misfit-prior docs

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { .ci/find-python >/dev/null; exit 1; }
	@$(PYTHON) -c '$(SUPPORTED)' || { echo "error: $(PYTHON) is not Python 3.12-3.13"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bayesdistill demo --out out

# the suite runs on TEST_WORKERS pytest-xdist workers (one per core of the 2-core CI machine)
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check bayesdistill tests benchmarks data models
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup
	$(MAKE) --no-print-directory docs

# the documentation site (docs/mkdocs.yml): user guide, rendered notebooks, API reference from the
# docstrings; strict, so a broken reference or link fails the build. Open docs/site/index.html.
docs: $(STAMP)
	cd docs && NO_MKDOCS_2_WARNING=1 ../$(BIN)/mkdocs build

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# refit the population prior of the law's misfit beyond the fitted compute (models/misfit_prior.json)
misfit-prior: $(STAMP)
	$(BIN)/python models/make_misfit_prior.py

lint: $(STAMP)
	$(BIN)/ruff check bayesdistill tests benchmarks data models
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) out .pytest_cache docs/site

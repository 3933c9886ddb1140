# Two commands do all the set-up on a fresh machine:
#   make example   install into .venv, then run the whole pipeline on the bundled example
#   make test      install into .venv (with test extras), then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

example: $(STAMP)
	test -f example_ws/autoflux.yml || $(BIN)/autoflux init example_ws
	$(BIN)/autoflux run examples/loan-default --workspace example_ws

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf example_ws .pytest_cache

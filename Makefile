# Two commands do all the set-up on a fresh machine:
#   make example   install into .venv, then run the whole pipeline on the bundled example
#   make test      install into .venv (with test extras), then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example test deps bench clean bytecode

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# AutoFlux's own modules compiled ahead, as `pip install` does for a package (an editable install is not):
# each `autoflux` process then starts ~0.25 s sooner, even where PYTHONDONTWRITEBYTECODE is set.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q autoflux

example: $(STAMP) bytecode
	test -f example_ws/autoflux.yml || $(BIN)/autoflux init example_ws
	$(BIN)/autoflux run examples/loan-default --workspace example_ws

# System packages the tests use, installed only when missing: Java 17 and the PostgreSQL JDBC
# driver (Spark and its metastore), Chromium (the report's browser test), Node's npm; and Azurite
# (npm) for the Azure Blob tests, in ./node_modules.
deps:
	command -v java >/dev/null && test -f /usr/share/java/postgresql.jar && command -v chromium >/dev/null && command -v npm >/dev/null || { apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless libpostgresql-jdbc-java chromium fonts-dejavu-core $$(command -v npm >/dev/null || echo nodejs npm); }
	test -x node_modules/.bin/azurite-blob || npm install --no-save --no-audit --no-fund --loglevel=error azurite

# Two test processes (pytest-xdist): the Spark tests on one, the rest on the other (tests/conftest.py).
test: $(STAMP) deps bytecode
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf example_ws .pytest_cache node_modules

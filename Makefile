# Puente — the two commands of README.md are `make run` and `make test`.
# Both do all set-up on a fresh machine: a virtualenv with pinned packages (PyPI) and, on first use,
# Apache Kafka's jars (Maven Central, cached under .cache/).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint unit bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Puente needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

## The main job on the embedded default: a local Kafka broker, the members provisioned, the exchange run.
run: setup
	$(BIN)/puente demo

## Everything CI checks: lint, types, then the tests against a real broker.
test: setup lint
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check services gateway tests
	$(BIN)/ruff format --check services gateway tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest tests/unit

bench: setup
	$(BIN)/python -m tests.bench

clean:
	-$(BIN)/puente kafka down
	rm -rf $(VENV) .state

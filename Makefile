# csv-to-kafka: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv with the package and the test tools

.PHONY: system-deps
system-deps: ## Install what Debian must provide (Java for Kafka, Maven to fetch it)
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; fi

.PHONY: stack-up
stack-up: install system-deps ## Start Kafka (KRaft) and moto on 127.0.0.1
	local/stack up >/dev/null

.PHONY: stack-down
stack-down: ## Stop the local stack
	local/stack down

.PHONY: lint
lint: install ## ruff and mypy (strict) on the package
	$(BIN)/ruff check app tests
	$(BIN)/mypy

.PHONY: unit
unit: install ## Unit tests only (no broker)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

.PHONY: test
test: install stack-up lint ## Everything: lint, unit and integration tests against the real broker, coverage >= 85%
	rm -f .coverage .coverage.*
	eval "$$(local/stack env)" && $(BIN)/coverage run -m pytest tests/unit tests/integration -q -p no:cacheprovider $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

.PHONY: demo
demo: install stack-up ## Copy a 1M-row CSV through the local stack, with a progress bar, then verify
	eval "$$(local/stack env)" && $(BIN)/python local/demo.py

.PHONY: clean
clean: ## Remove the venv, caches and the local stack's data
	-local/stack reset
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* *.egg-info app/*.egg-info

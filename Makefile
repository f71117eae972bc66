# Tandem's front door. `make run` starts the whole system locally; `make test` checks everything.
# Both install what they need first (uv, Python packages, Kafka jars, the secantusd-rs
# MongoDB-wire server built with cargo, redis-server).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export PATH := $(HOME)/.local/bin:$(PATH)

PYTHON ?= python3
UV ?= uv
STACK := $(PYTHON) deploy/local/stack.py
# `make test` runs its own servers on their own ports and data dir, so it never touches the
# servers of a `make run` on the same machine.
TEST_STACK_ENV := TANDEM_STACK_DIR=$(CURDIR)/.cache/tandem/stack-test TANDEM_KAFKA_PORT=19092 \
	TANDEM_MONGO_PORT=27117 TANDEM_REDIS_PORT=16379
TEST_ENV := $(TEST_STACK_ENV) TANDEM_INFRA=local TANDEM_ENVIRONMENT=test \
	TANDEM_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 TANDEM_MONGO_URL=mongodb://127.0.0.1:27117 \
	TANDEM_REDIS_URL=redis://127.0.0.1:16379/0
PYTEST ?= $(UV) run --frozen pytest
PYTEST_ARGS ?=

.PHONY: help uv install browser run test test-unit test-integration test-e2e lint fmt stack-up \
	stack-down stack-status stack-logs stack-reset e2e bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

uv: ## install uv from PyPI if missing
	@command -v $(UV) >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv

install: uv ## install the workspace (frozen lockfile) and fetch the servers
	@$(UV) sync --frozen --all-packages --python 3.11 --quiet
	@$(STACK) fetch

run: install ## start servers and the three services; Ctrl-C stops everything
	@$(UV) run --frozen python deploy/local/run.py

stack-up: uv ## start Kafka, secantusd-rs (or mongod) and Redis for development
	@$(STACK) up
stack-down: ## stop the development servers
	@$(STACK) down
stack-status: ## show the development servers
	@$(STACK) status
stack-logs: ## tail the development servers' logs
	@$(STACK) logs
stack-reset: ## stop the development servers and wipe their data
	@$(STACK) reset

lint: ## ruff (lint + format check) and mypy
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy

fmt: ## format and autofix
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

browser: uv ## install Debian's chromium for the browser tests if missing
	@$(STACK) browser

test: install browser ## lint, type-check and run every test tier against real servers
	@$(TEST_STACK_ENV) $(STACK) up
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(TEST_ENV) $(PYTEST) -m "unit or deploy" $(PYTEST_ARGS) || status=1; \
	$(TEST_ENV) $(PYTEST) -m "integration or browser" $(PYTEST_ARGS) || status=1; \
	$(TEST_ENV) $(PYTEST) -m "e2e" $(PYTEST_ARGS) || status=1; \
	$(TEST_STACK_ENV) $(STACK) down; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED"; else echo "make test: passed"; fi; \
	exit $$status

e2e: install ## the full end-to-end profile with the reliability report
	@TANDEM_E2E_PROFILE=full $(PYTEST) -m e2e tests-e2e $(PYTEST_ARGS)

bench: install ## benchmark the whole system against raw limits measured in the same run
	@$(UV) run --frozen python -m bench

clean: ## remove caches of Python tools (keeps downloaded servers)
	rm -rf .mypy_cache .ruff_cache .pytest_cache

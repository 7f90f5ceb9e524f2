# datastory: `make run` builds the pack, `make test` proves it. `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast lint format bench clean

help: ## list the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/datastory plots-page
	@touch $@

setup: $(STAMP) ## create .venv if missing and install the pinned dependencies

run: setup ## set up, then build every audience's pack with `dvc repro`
	dvc repro

test: setup ## set up, then run the whole test suite (unit, notebooks, end-to-end)
	pytest --run-slow -n 2 --dist loadfile --durations=20

test-fast: setup ## unit tests only (skips slow fits and end-to-end runs)
	pytest

lint: setup ## ruff, and check that notebooks are committed without outputs
	ruff check src tests bench
	nbstripout --verify notebooks/*.ipynb

format: setup ## ruff format and strip notebook outputs
	ruff format src tests bench
	nbstripout notebooks/*.ipynb

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $@

bench: setup $(BENCH_STAMP) ## print the benchmark figures (not tests)
	@for b in bench/[!_]*.py; do echo "== $$b"; python $$b || exit 1; done

clean: ## remove the pipeline's outputs (keeps .venv, and the committed baseline: metrics/, dvc.lock)
	rm -rf data/raw/sample data/interim data/processed dvc_plots scratch metrics/forecast_backtest.csv
	find reports -mindepth 1 ! -name README.md -delete
	git checkout -- metrics 2>/dev/null || true

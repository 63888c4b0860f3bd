# mlscale: `make demo` runs every pipeline on generated data; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENV := source scripts/env.sh &&

DAYS ?= 7
ROWS_PER_DAY ?= 20000

WORLD_DAYS ?= 180
SCENARIO ?= half_year

.PHONY: demo world test up stack stack-down lint bench bench-smoke lock airflow clean-demo venv

venv: $(STAMP)

# (Re)create the environment when the lock or the package metadata changes.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "$$(grep -E '^uv==' requirements.txt)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(ENV) DAYS=$(DAYS) ROWS_PER_DAY=$(ROWS_PER_DAY) bash scripts/demo.sh

# Replay WORLD_DAYS days of the SCENARIO world (include/scenarios/) with every pipeline's own functions, into
# data/world/ (resumable: run it again to continue). The Airflow settings give the pseudonymisation key.
world: $(STAMP)
	$(ENV) airflow db migrate >/dev/null && mlscale apply-settings airflow_settings.yaml >/dev/null \
	  && mlscale simulate --lake $(CURDIR)/data/world --days $(WORLD_DAYS) --scenario $(SCENARIO) \
	  --rows-per-day $(ROWS_PER_DAY)

test: $(STAMP)
	$(ENV) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

up: $(STAMP)
	$(ENV) bash scripts/up.sh

# The production shape on loopback (PostgreSQL, Redis, S3 on moto, MLflow server, Dask scheduler + 2 workers,
# Airflow services): the same DAGs, other connections (.stack/env.sh). stack-down stops what stack started.
stack: $(STAMP)
	bash scripts/stack.sh up

stack-down:
	bash scripts/stack.sh down

# Static checks (CI runs them before the tests): ruff (style, complexity, no heavy module-level imports in
# dags/), import-linter (the layer contracts in pyproject.toml's [tool.importlinter]) and mypy.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(ENV) $(BIN)/lint-imports --no-logo
	$(BIN)/mypy

bench: $(STAMP)
	$(ENV) bash benchmarks/run_all.sh

bench-smoke: $(STAMP)
	$(ENV) bash benchmarks/run_all.sh --smoke

# Regenerate the lock from requirements.in (needs the package index).
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --custom-compile-command "make lock" -o requirements.txt

# Any Airflow command against this project: make airflow ARGS="dags test ingest_transactions 2026-11-01"
airflow: $(STAMP)
	$(ENV) airflow $(ARGS)

clean-demo:
	rm -rf .airflow data/lake

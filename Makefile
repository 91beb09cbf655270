# Two entry points on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Every recipe runs as if the venv were activated, so `dg` finds the project's venv.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test dev simulator bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Materialize the pipeline for the last few days against the built-in simulator.
demo: $(STAMP)
	SIRO_SIMULATOR=1 DAGSTER_HOME=$(CURDIR) $(BIN)/python scripts/demo.py

## The whole test suite.
test: $(STAMP)
	$(BIN)/dg check defs
	$(BIN)/python -m pytest -n 2 -q

## The Dagster UI on the simulator (http://127.0.0.1:3000), with the schedule and sensor daemon.
dev: $(STAMP)
	SIRO_SIMULATOR=1 DAGSTER_HOME=$(CURDIR) $(BIN)/dg dev

## The simulator as an HTTP server on 127.0.0.1:8787.
simulator: $(STAMP)
	$(BIN)/python -m siro_assets.simulator --port 8787

bench: $(STAMP)
	$(BIN)/python bench/ingest_throughput.py

clean:
	rm -rf $(VENV) data history storage schedules logs .logs_queue .nux .telemetry

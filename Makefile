# Two entry points on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Every recipe runs as if the venv were activated, so `dg` finds the project's venv.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test dev dev-webhooks simulator bench clean

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

## `make dev` with Siro's webhooks: the simulator over HTTP sends signed webhooks to a
## receiver on 127.0.0.1:8788, and the UI's webhook sensor drains them every 5 s.
dev-webhooks: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/python scripts/dev_webhooks.py

## The simulator as an HTTP server on 127.0.0.1:8787.
simulator: $(STAMP)
	$(BIN)/python -m siro_assets.simulator --port 8787

## Every benchmark in its quick mode (drop --quick for the full sizes; see bench/RESULTS.md).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	cd bench && for b in rate_ceiling throughput memory derived_tables sensor_refresh; do \
		PYTHONPATH=$(CURDIR) ../$(BIN)/python $$b.py --quick || exit 1; done

clean:
	rm -rf $(VENV) data history storage schedules logs .logs_queue .nux .telemetry

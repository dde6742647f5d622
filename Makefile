# synchub: `make run` starts the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test lint bench bench-tracing chaos soak worker clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## Temporal + Web UI, Kafka, Redis, simulators, worker, schedules; Ctrl-C stops all
	$(PY) starter.py dev

worker: install  ## a worker against the services named in the environment
	$(PY) worker.py

PYTEST_PARALLEL ?= -n auto --maxprocesses 3 --dist loadfile --durations 15

test: install lint  ## lint, types, then every test against real services
	$(PY) -m pytest $(PYTEST_PARALLEL)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: install  ## WIW 10,000 and 100,000 shifts side by side with the per-record loop, then Advoware 1,000 employees (~6.5 min)
	$(PY) -m bench
	$(PY) -m bench advoware --employees 1000

bench-tracing: install  ## tracing overhead: 10,000-shift first syncs without and with tracing (~3 min)
	$(PY) -m bench.tracing

chaos: install  ## kill and restart broker, Redis, Temporal and workers mid-sync; prints the table
	$(PY) -m tests.chaos

soak: install  ## a simulated month per source through the real stack; prints the soak table
	$(PY) -m soak

clean:
	rm -rf $(VENV) .synchub .pytest_cache .mypy_cache .ruff_cache *.egg-info

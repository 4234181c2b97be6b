# Tubeway: `make run` starts a server on http://127.0.0.1:8080, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install run test torture bench bench-peers clean

install: $(STAMP)

# Reinstall only when the packaging changes; the editable install picks up code changes by itself.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: install
	$(VENV)/bin/tubeway up

test: install
	$(VENV)/bin/pytest

# The kill -9 torture test at length (TORTURE_CYCLES kills per storage backend; `make test` runs 5).
# Repeat a run with TORTURE_SEED=<the seed it printed>; TORTURE_TARGETS=broker,worker,http,all narrows the kills.
TORTURE_CYCLES ?= 100
torture: install
	TORTURE_CYCLES=$(TORTURE_CYCLES) $(VENV)/bin/pytest -v -rA tests/torture

# Benchmarks use wrk when present (installed here when missing and we are root), else a Python load generator.
bench: install
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || apt-get install -y -q wrk >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } \
		|| echo "wrk could not be installed: using the Python load generator"
	$(VENV)/bin/python tests/perf/run.py

# Tubeway beside Huey, RQ, Celery and BullMQ (installed under build/peers/), written to tests/perf/RESULTS.md.
# A quicker run: make bench-peers PEERS_ARGS="--scale 0.1 --peers tubeway,bullmq --only noop,latency"
PEERS_ARGS ?=
bench-peers: install
	$(VENV)/bin/python tests/perf/peers/run.py $(PEERS_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .coverage .coverage.*
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

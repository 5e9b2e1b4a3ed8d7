# The two commands: `make run` and `make test`.  Everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed

.PHONY: run test install migrate bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

# Starts the product on its embedded defaults: SQLite, the in-memory channel
# layer with the workers inside the server, and the sandbox third parties.
run: export DEBUG ?= 1
run: export PORT := $(PORT)
run: export PAYMENT_GATEWAY_URL ?= http://127.0.0.1:$(PORT)/sandbox/gateway/
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	@if [ "$$DEBUG" = "1" ] || [ "$$DEBUG" = "true" ]; then $(BIN)/python manage.py demo_user; fi
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

# The suite in two passes, side by side (devtools/test-passes.sh): every test
# on SQLite, and the tests marked `engine` (claims, locks, requeue, races, the
# real processes) again on PostgreSQL, which under CI=true must be reachable.
# Each pass ends with a line saying what ran and how long it took; nothing may
# skip under CI=true.
PG_URL ?= postgres://postgres@127.0.0.1:5432/jobs
test: $(STAMP)
	@devtools/test-passes.sh $(BIN)/python "$(PG_URL)" $(PYTEST_ARGS)

# Benchmarks (issue #8): never part of `make test`.  Writes bench/results/
# (Markdown, JSON, PNG); BENCH_QUICK=1 for a smoke run with small N.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) db.sqlite3* .test-db.sqlite3* tests/artifacts .pytest_cache

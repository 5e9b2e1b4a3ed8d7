# The two commands: `make run` and `make test`.  Everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
# What running needs, and on top of it what testing needs.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: run up test install migrate bench clean

# pip speaks for itself (no --quiet): a first install takes a minute or two.
$(RUN_STAMP): requirements.txt
	@test -x $(BIN)/python || { echo "Creating the virtualenv in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing what the product needs to run (a minute or two the first time)"
	$(BIN)/python -m pip install --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	@touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	@echo "Installing the test tools"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(STAMP)

# Local development's one configuration file, read by the settings (and by
# honcho): DEBUG and a SECRET_KEY of its own.  Written once, never
# overwritten, and git-ignored.
.env:
	@echo "Writing .env for local development (DEBUG=1 and a new SECRET_KEY); edit it to change settings"
	@umask 077 && printf '# Local development settings, read by manage.py, daphne, honcho and cron (git-ignored).\nDEBUG=1\nSECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env

# Starts the product on its embedded defaults: SQLite, the in-memory channel
# layer with the workers inside the server, and the sandbox third parties.
run: export PORT := $(PORT)
# The embedded defaults, whatever `make up` recorded in .env.
run: export REDIS_URL :=
run: export PAYMENT_GATEWAY_URL ?= http://127.0.0.1:$(PORT)/sandbox/gateway/
run: $(RUN_STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user --if-enabled
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

# The Redis mode on one machine: Redis (started when nothing answers at
# REDIS_URL), then the Procfile under honcho: daphne on $(PORT), a payments
# pool and a pool for everything else, all on the virtualenv's PATH.
REDIS_URL ?= redis://127.0.0.1:6379/0
up: export REDIS_URL := $(REDIS_URL)
up: export PORT := $(PORT)
up: export PAYMENT_GATEWAY_URL ?= http://127.0.0.1:$(PORT)/sandbox/gateway/
up: export PATH := $(abspath $(BIN)):$(PATH)
up: $(RUN_STAMP) .env
	$(BIN)/python -m devtools.redis_up "$(REDIS_URL)" .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user --if-enabled
	@echo "Serving on http://$(HOST):$(PORT)/ with workers in their own processes (Ctrl-C stops them all)"
	$(BIN)/honcho start -p $(PORT)

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

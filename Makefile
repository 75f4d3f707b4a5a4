# Portail — `make run` starts the portal on its embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_ENV := PORTAIL_DEBUG=1

.PHONY: help run test test-sqlite test-e2e test-postgres lint bench screenshots install install-test clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(BIN)/portail: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/portail
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/portail  ## create .venv and install Portail

install-test: $(VENV)/.test-deps  ## install what the tests need too

$(VENV)/.demo-deps: $(BIN)/portail
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

run: install $(VENV)/.demo-deps  ## the portal on http://127.0.0.1:8000/auth/login with a demo school and two demo applications (CAS :8001, OpenID Connect :8002); Ctrl-C stops all
	$(DEV_ENV) $(BIN)/python -m demo --port 8000 --cas-port 8001 --oidc-port 8002

test: install-test  ## lint, migrations check, then the whole suite on SQLite and on PostgreSQL
	$(BIN)/ruff check .
	PORTAIL_DEBUG=1 $(BIN)/portail makemigrations --check --dry-run
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: install-test  ## the suite on SQLite
	$(BIN)/pytest -p no:cacheprovider

test-e2e: install-test  ## only the browser tests (Chromium + axe-core), on SQLite
	$(BIN)/pytest -p no:cacheprovider -m e2e

test-postgres: install-test  ## the suite on PostgreSQL (127.0.0.1:5432); fails when CI=true and it is missing
	@st=0; $(BIN)/python tests/require_services.py postgres || st=$$?; \
	if [ $$st = 3 ]; then exit 0; elif [ $$st != 0 ]; then exit $$st; fi; \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portail} \
	  $(BIN)/pytest -p no:cacheprovider -m "not e2e"

lint: install-test  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-test  ## benchmarks that print figures
	@for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

screenshots: install-test  ## PNGs of every page (public, logged in, console) at 1280 and 375 px into docs/screenshots/ (tests/public_pages.py)
	$(BIN)/python tools/screenshots.py

clean:  ## remove .venv and var/
	rm -rf $(VENV) var

# Every target sets itself up on a fresh machine: the virtualenv and node_modules are (re)built
# when their pinned inputs change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The web app (web/) has its own package.json and lockfile.
WEB_STAMP := web/node_modules/.installed
# The shared tools the local stack and the tests run, each in a venv of its own (their pins conflict
# with the project's), rebuilt when its requirements file changes.
TOOLS := .tools
TOOL_STAMPS := $(TOOLS)/jupyterhub/.installed $(TOOLS)/prefect/.installed $(TOOLS)/prefect/template.db
# jsii (under aws-cdk-lib) runs on the Node 22 that package.json pins, not the machine's Node.
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup tools pgbouncer chromium web-setup dev dev-reset test lint synth bench openapi clean

setup: $(VENV_STAMP) $(NODE_STAMP)

$(VENV_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt ".[dev,cdk]"
	$(PY) local/write_pth.py
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-setup: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	npm --prefix web ci --no-audit --no-fund --loglevel=error
	touch $@

tools: $(TOOL_STAMPS)

$(TOOLS)/%/.installed: local/tools/requirements-%.txt
	rm -rf $(TOOLS)/$*
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/pip install --quiet --disable-pip-version-check --no-deps -r $<
	touch $@

# Prefect's migrated, empty database: each new Prefect state starts from a copy (migrating takes ~10 s).
$(TOOLS)/prefect/template.db: $(TOOLS)/prefect/.installed
	$(PYTHON) -m local.tools.prefect template $@

# PgBouncer stands between the functions and PostgreSQL in `make dev` and the tests, as RDS Proxy
# does in AWS (local/pooler.py starts a private one): Debian's package, installed when missing.
PGBOUNCER_FOUND = $(or $(shell command -v pgbouncer 2>/dev/null),$(wildcard /usr/sbin/pgbouncer))
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
pgbouncer:
	@if [ -z "$(PGBOUNCER_FOUND)" ]; then \
	  echo "PgBouncer is not installed: installing it"; \
	  command -v apt-get >/dev/null || { echo "install PgBouncer with your package manager" >&2; exit 1; }; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; \
	fi

# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work on
# these machines), installed like PgBouncer when missing.
CHROMIUM_FOUND = $(shell command -v chromium 2>/dev/null)
chromium:
	@if [ -z "$(CHROMIUM_FOUND)" ]; then \
	  echo "Chromium is not installed: installing it"; \
	  command -v apt-get >/dev/null || { echo "install Chromium with your package manager" >&2; exit 1; }; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# The web app at http://127.0.0.1:5173 (Vite's dev server, /api proxied to the API); LOCAL_WEB=off
# runs the API alone.
dev: setup tools pgbouncer web-setup
	LOCAL_WEB=$${LOCAL_WEB:-dev} $(PY) -m local.stack

dev-reset:
	rm -rf .local

test: setup tools pgbouncer web-setup chromium lint
	cd web && npx tsc -p . && npx vitest run
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# `make synth STAGE=prod` synthesizes production with the complete example context (prod refuses to
# synthesize without its context); CONTEXT_FILE=<file> uses an operator's own instead.
STAGE ?= dev
CONTEXT_FILE ?= $(if $(filter prod,$(STAGE)),cdk/context/prod.example.json)
synth: setup web-setup
	npx cdk synth --quiet -c stage=$(STAGE) $(if $(CONTEXT_FILE),-c contextFile=$(CONTEXT_FILE))

bench: setup
	$(PY) -m bench

openapi: setup web-setup
	$(PY) -m local.openapi --write
	cd web && npm run --silent openapi

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .build web/node_modules web/dist

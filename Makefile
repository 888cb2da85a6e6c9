# Portcullis. `make run` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
HOST ?= 127.0.0.1
PORT ?= 5000
PIP := $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off
# The suite runs in parallel, a test file per worker (module-scoped live servers stay shared).
TEST_WORKERS ?= auto

# `make run` makes the issuer (discovery, tokens, the demo banner) the address it serves on,
# unless PORTCULLIS_ISSUER is set in the environment or the instance's config.py sets ISSUER.
INSTANCE_DIR := $(or $(PORTCULLIS_INSTANCE_PATH),instance)
ifeq ($(origin PORTCULLIS_ISSUER),undefined)
ifeq ($(shell grep -Eqs '^ISSUER *=' '$(INSTANCE_DIR)/config.py' && echo set),)
RUN_ENV := PORTCULLIS_ISSUER=http://$(if $(findstring :,$(HOST)),[$(HOST)],$(HOST)):$(PORT)
endif
endif

.PHONY: install install-run run test lint format bench browser clean floors

# Everything, development tools included (pytest, ruff, Playwright...): test, lint, bench.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Portcullis with its runtime and development dependencies into $(VENV)..."
	$(PIP) -e '.[dev]'
	@touch $@ $(RUN_STAMP)

# Only what running needs (`make run`); an install with the dev tools counts too.
$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Portcullis and its runtime dependencies into $(VENV) (first run only)..."
	$(PIP) -e .
	@echo "Installed."
	@touch $@

install: $(STAMP)

install-run: $(RUN_STAMP)

run: install-run
	$(RUN_ENV) $(BIN)/flask init-db
	$(RUN_ENV) $(BIN)/flask demo
	$(RUN_ENV) $(BIN)/flask run --host $(HOST) --port $(PORT)

# Browser tests drive Debian's Chromium; install it when missing (needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || sh scripts/install-chromium.sh

test: install browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_structure.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benchmark: Portcullis against node-oidc-provider, A/B/A/B (benchmarks/README.md).
# BENCH_ARGS="--server sync --server granian --seconds 5 ..." chooses; `npm ci` runs when the
# lock file is newer than node_modules.
NODE_OIDC := benchmarks/node-oidc
BENCH_ARGS ?=

$(NODE_OIDC)/node_modules/.package-lock.json: $(NODE_OIDC)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make bench needs Node.js 20+ and npm"; exit 1; }
	cd $(NODE_OIDC) && npm ci --no-audit --no-fund

bench: install $(NODE_OIDC)/node_modules/.package-lock.json
	$(BIN)/python benchmarks/run.py --reference node $(BENCH_ARGS)

# Every dependency at exactly its pyproject.toml floor, in a throw-away virtualenv, runs the
# tests (SQLite). FLOORS_ARGS=--dev pins the dev extra too; see scripts/check_floors.py.
floors:
	$(PYTHON) scripts/check_floors.py $(FLOORS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

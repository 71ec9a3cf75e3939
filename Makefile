# Developer shortcuts; the scripts do the work (and install what they need first).
.PHONY: run test lint bench

run:  ## serve the viewer (make run ARGS="--config camgate.yaml")
	@scripts/run $(ARGS)

test:  ## lint, then every test (make test PYTEST_ARGS="-k rtsp -x")
	@scripts/test $(PYTEST_ARGS)

lint:
	@bash scripts/install-deps.sh --test
	.venv/bin/ruff check gateway tests bench
	.venv/bin/ruff format --check gateway tests bench
	.venv/bin/python -m mypy --ignore-missing-imports gateway

bench:  ## benchmarks, as root (see docs/benchmarks.md)
	@bash scripts/install-deps.sh --test
	.venv/bin/python -m bench $(ARGS)

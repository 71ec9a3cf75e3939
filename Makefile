# Developer shortcuts; the scripts do the work (and install what they need first).
.PHONY: run test attack lint bench image image-test

run:  ## serve the viewer (make run ARGS="--config camgate.yaml")
	@scripts/run $(ARGS)

test:  ## lint, then every test (make test PYTEST_ARGS="-k rtsp -x")
	@scripts/test $(PYTEST_ARGS)

attack:  ## the attack suite only (SECURITY.md): hostile cameras, viewers and networks
	@scripts/test -m attack

lint:
	@bash scripts/install-deps.sh --test
	.venv/bin/ruff check gateway tests bench
	.venv/bin/ruff format --check gateway tests bench
	.venv/bin/python -m mypy --ignore-missing-imports gateway
	.venv/bin/lint-imports

bench:  ## benchmarks, as root (see docs/benchmarks.md)
	@bash scripts/install-deps.sh --test
	.venv/bin/python -m bench $(ARGS)

image:  ## the Pi image (Debian twin), as root: build/image/camgate-debian-arm64.img.xz
	@bash scripts/install-deps.sh --image
	bash images/debian/build.sh

image-test:  ## build the image, boot it under QEMU, check it is healthy (docs/raspberry-pi.md)
	@bash scripts/install-deps.sh --image
	bash images/image-test.sh

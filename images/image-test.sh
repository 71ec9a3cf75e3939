#!/usr/bin/env bash
# `make image-test`: build the Debian twin image, boot it under QEMU, check it is healthy;
# report the timings and size. On success, record which images/ + deploy/ it tested
# (images/tested.sha256), so CI re-runs this only when those change (scripts/ci-image).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
started=$SECONDS
bash images/debian/build.sh
built=$SECONDS
bash images/test.sh
image=build/image/camgate-debian-arm64.img.xz
echo "image-test: build $((built - started)) s, boot test $((SECONDS - built)) s," \
    "$(du -h "$image" | cut -f1) compressed ($(du -h --apparent-size "${image%.xz}" | cut -f1) raw)"
bash images/tested-digest.sh >images/tested.sha256
echo "image-test: recorded images/tested.sha256 (commit it with the change)"

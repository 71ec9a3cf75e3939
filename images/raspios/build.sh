#!/usr/bin/env bash
# Build the production image (Raspberry Pi OS Lite + camgate; Pi 3/4/5/Zero 2 W, Pi camera
# support) with the Raspberry Pi Foundation's pi-gen, in its Docker build.
#
#   images/raspios/build.sh [PI_GEN_DIR]
#
# Needs Docker, git and access to github.com and archive.raspberrypi.com (so it cannot run
# on a build machine limited to Debian and PyPI mirrors; the Debian twin,
# images/debian/build.sh, is built and boot-tested there instead).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PI_GEN=${1:-$REPO/build/pi-gen}
PI_GEN_REF=${PI_GEN_REF:-2024-11-19-raspios-bookworm-arm64}

if [[ ! -d $PI_GEN ]]; then
    git clone --depth 1 --branch "$PI_GEN_REF" https://github.com/RPi-Distro/pi-gen.git "$PI_GEN"
fi
# camgate and its dependencies as wheels for the Pi (aarch64, Python 3.11), from this
# checkout: the stage installs them offline.
wheels=$REPO/build/raspios-wheels
rm -rf "$wheels"
mkdir -p "$wheels"
python3 -m pip wheel -q --no-deps -w "$wheels" "$REPO"
python3 -m pip download -q --only-binary=:all: --dest "$wheels" \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 --platform linux_aarch64 \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    "$wheels"/camgate-*.whl
cp "$REPO/images/raspios/config" "$PI_GEN/config"
# The stage and the app layer come from this checkout, mounted into the build container.
PIGEN_DOCKER_OPTS="--volume $REPO:/camgate:ro" \
    "$PI_GEN/build-docker.sh" -c "$PI_GEN/config"
# pi-gen names it image_<date>-camgate.img.xz (DEPLOY_COMPRESSION=xz in the config).
ls -l "$PI_GEN"/deploy/image_*-camgate.img.xz

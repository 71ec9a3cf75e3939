#!/usr/bin/env bash
# Build an update bundle from this checkout: camgate-update-<version>.tar.
#
#   deploy/raspberrypi/make-update.sh [--out DIR] [--python-version 3.11] [--native]
#
# The bundle holds camgate's wheel built from this checkout and binary wheels of all its
# dependencies for the Pi (aarch64, the Python of Raspberry Pi OS / Debian bookworm: 3.11),
# so the Pi installs it offline. Copy it to the Pi's boot partition and reboot: camgate-update
# applies it (deploy/raspberrypi/app/camgate-update says how, docs/raspberry-pi.md too).
#   --out DIR             where to write the bundle (default: build/update)
#   --python-version V    the Pi's Python (3.13 for a Raspberry Pi OS based on trixie)
#   --native              for this machine's Python and architecture instead of the Pi's
# Needs python3 with pip ($PYTHON to choose another) and the package index (dependencies).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/build/update
PY_VERSION=3.11
NATIVE=0
PYTHON=${PYTHON:-python3}
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --python-version) PY_VERSION=$2; shift 2 ;;
        --native) NATIVE=1; shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "make-update.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
die() { echo "make-update.sh: error: $*" >&2; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/bundle/wheels/docs"
# A copy of the tracked tree: the build leaves nothing in the checkout.
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        (cd "$REPO" && xargs -0 cp --parents -t "$work/src" 2>/dev/null) || true
else
    tar -C "$REPO" --exclude=./.venv --exclude=./build -cf - . | tar -C "$work/src" -xf -
fi
[[ -f $work/src/pyproject.toml ]] || die "no pyproject.toml in $REPO: not a camgate checkout"

wheels=$work/bundle/wheels
"$PYTHON" -m pip wheel -q --no-deps -w "$wheels" "$work/src" ||
    die "could not build camgate's wheel from $REPO"
camgate_wheel=$(find "$wheels" -name 'camgate-*.whl')
version=${camgate_wheel##*/camgate-}
version=${version%%-*}
if [[ $NATIVE -eq 1 ]]; then
    "$PYTHON" -m pip wheel -q -w "$wheels" "$camgate_wheel" ||
        die "could not collect the dependencies' wheels"
else
    # Binary wheels only: nothing compiles on the Pi (the same set the image build uses).
    py=${PY_VERSION//./}
    "$PYTHON" -m pip download -q --only-binary=:all: --dest "$wheels" \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 --platform linux_aarch64 \
        --python-version "$PY_VERSION" --implementation cp --abi "cp$py" --abi abi3 --abi none \
        "$camgate_wheel" || die "could not download the dependencies' aarch64 wheels"
fi
for doc in README.md camgate.example.yaml SECURITY.md; do
    cp "$work/src/$doc" "$wheels/docs/"
done
echo "$version" >"$work/bundle/VERSION"
(cd "$work/bundle" && find VERSION wheels -type f | sort | xargs sha256sum >SHA256SUMS)
mkdir -p "$OUT"
bundle=$OUT/camgate-update-$version.tar
tar -cf "$bundle.partial" -C "$work/bundle" --sort=name --owner=0 --group=0 \
    SHA256SUMS VERSION wheels
mv -f "$bundle.partial" "$bundle"
echo "make-update.sh: $bundle ($(du -h "$bundle" | cut -f1)): copy it to the boot partition and reboot"

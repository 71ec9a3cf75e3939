#!/usr/bin/env bash
# Install what camgate needs, idempotently; quick when nothing changed.
#
#   scripts/install-deps.sh          .venv at the repo root + `pip install -e .`
#   scripts/install-deps.sh --test   also the Debian packages the tests use and `.[test]`
#   scripts/install-deps.sh --image  only the Debian packages that build the Pi image
#
# Debian 12 (bookworm) / Raspberry Pi OS. Needs Python >= 3.11 as `python3` on PATH
# (or $PYTHON). apt needs root (or sudo). Never runs `playwright install`: the tests drive
# Debian's /usr/bin/chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Everything the end-to-end tests start (tests/rig/ drives each of them).
TEST_APT_PACKAGES=(
    chromium                      # headless browser for viewer tests (/usr/bin/chromium)
    python3                       # Debian's /usr/bin/python3 runs the GStreamer RTSP server
    python3-gi
    gir1.2-gst-rtsp-server-1.0
    gstreamer1.0-rtsp
    gstreamer1.0-tools            # gst-inspect-1.0, to probe for elements
    gstreamer1.0-plugins-base     # videotestsrc
    gstreamer1.0-plugins-good     # rtph264pay
    gstreamer1.0-plugins-bad      # h264parse
    gstreamer1.0-plugins-ugly     # x264enc
    gstreamer1.0-x                # pango: timeoverlay in the test pattern
    ffmpeg                        # ffprobe/ffmpeg as independent RTSP clients
    mosquitto
    mosquitto-clients
    iproute2                      # ip netns: one network namespace per test
    shellcheck                    # the Pi install and image scripts
    systemd                       # systemd-analyze verify for the Pi units
    libcap-dev                    # python-prctl (a picamera2 dependency) builds against it
    mmdebstrap                    # a throwaway Debian root for the installer tests
    device-tree-compiler          # dtc: device trees for the Pi boot check's test
)
# The Pi image build and its QEMU boot test (`make image-test`, images/).
IMAGE_APT_PACKAGES=(
    mmdebstrap qemu-user-static binfmt-support qemu-system-arm
    arch-test                     # mmdebstrap's check that arm64 programs run (binfmt)
    ipxe-qemu                     # efi-virtio.rom: QEMU's virtio-net NIC in the boot test
    dosfstools mtools fdisk e2fsprogs xz-utils zstd python3-pip
    openssh-client                # the boot test logs in with the key from the boot partition
)
# The viewer's JavaScript unit tests need Node.js >= 18 (`node --test`); any node will do.
command -v node >/dev/null || TEST_APT_PACKAGES+=(nodejs)

WITH_TEST=0
WITH_IMAGE=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        --image) WITH_IMAGE=1 ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
VENV=.venv
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
export DEBIAN_FRONTEND=noninteractive

log() { echo "install-deps: $*"; }
die() { echo "install-deps: error: $*" >&2; exit 1; }

# Run a command with its output kept out of sight unless it fails.
quietly() {
    local out
    out=$(mktemp)
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        die "failed: $*"
    fi
    rm -f "$out"
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) for: $*"
    fi
}

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || die "no apt-get: install by hand: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    quietly as_root apt-get update -q
    quietly as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

check_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (need Python >= 3.11)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$("$PYTHON" --version 2>&1) is too old: camgate needs Python >= 3.11"
}

# A venv that works, made by a Python >= 3.11; rebuilt if its interpreter went away.
ensure_venv() {
    if [[ -x $VENV/bin/python ]] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        return 0
    fi
    # Debian's own python3 ships venv's pip bootstrap separately.
    if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
        [[ $(readlink -f "$(command -v "$PYTHON")") == /usr/bin/python3* ]] ||
            die "$PYTHON cannot create virtual environments (no ensurepip)"
        apt_install python3-venv
    fi
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    rm -rf "$VENV"
    quietly "$PYTHON" -m venv "$VENV"
}

# pip only when pyproject.toml (or the extras asked for) changed since the last install.
STAMP="$VENV/.camgate-installed"
install_digest() {
    { cat pyproject.toml; echo "$1"; "$VENV/bin/python" --version; } | sha256sum | cut -d' ' -f1
}

is_current() {
    local target
    [[ -f $STAMP ]] || return 1
    "$VENV/bin/python" -c 'import gateway' 2>/dev/null || return 1
    for target in "$@"; do
        grep -qx "$(install_digest "$target")" "$STAMP" && return 0
    done
    return 1
}

pip_install() {
    local target=$1 keep
    if [[ $target == . ]]; then
        is_current . '.[test]' && return 0  # the test install includes the runtime one
    else
        is_current "$target" && return 0
    fi
    log "pip install -e '$target'"
    quietly "$VENV/bin/python" -m pip install -q -e "$target"
    # Remember this install; forget ones made from an older pyproject.toml.
    keep=$(grep -x -e "$(install_digest .)" -e "$(install_digest '.[test]')" "$STAMP" 2>/dev/null || true)
    printf '%s\n' "$keep" "$(install_digest "$target")" | grep . >"$STAMP"
}

main() {
    check_python
    if [[ $WITH_IMAGE -eq 1 ]]; then
        apt_install "${IMAGE_APT_PACKAGES[@]}"
        return 0
    fi
    if [[ $WITH_TEST -eq 1 ]]; then
        apt_install "${TEST_APT_PACKAGES[@]}"
    fi
    ensure_venv
    if [[ $WITH_TEST -eq 1 ]]; then
        pip_install '.[test]'
    else
        pip_install .
    fi
}

main

#!/usr/bin/env bash
# The camgate app layer: user, virtualenv, package, config, systemd units, first-boot and
# update hooks. One source of truth, run by deploy/raspberrypi/install.sh on a running Pi and
# by both image recipes inside the image's root. Idempotent: run it again to upgrade.
#
#   setup.sh [--root DIR] [--wheels DIR] [--skip-python] [--no-enable]
#
#   --root DIR     install into DIR as the target's / (default /; an image being built)
#   --wheels DIR   install camgate and its dependencies from these wheels, offline
#                  (default: build them from this checkout, inside the target: needs the
#                  package index for the dependencies)
#   --skip-python  lay out files and the user only (tests in a throwaway root)
#   --no-enable    install the units without enabling them
#
# camgate itself goes into a new virtualenv under /opt/camgate-releases and /opt/camgate
# becomes a link to it once it runs (app/camgate-update): a failed upgrade changes nothing.
# /etc/camgate/camgate.yaml and /var/lib/camgate are kept.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=/
WHEELS=
SKIP_PYTHON=0
ENABLE=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --root) ROOT=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --skip-python) SKIP_PYTHON=1; shift ;;
        --no-enable) ENABLE=0; shift ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
ROOT=${ROOT%/}
UNITS="camgate.service camgate-firstboot.service camgate-update.service camgate-boot-report.service"
log() { echo "camgate setup: $*"; }
die() { echo "camgate setup: error: $*" >&2; exit 1; }
trap 'echo "camgate setup: error: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
set -E

# Run a command inside the target (chroot when building an image).
in_target() {
    if [[ -z $ROOT ]]; then
        "$@"
    else
        chroot "$ROOT" "$@"
    fi
}

create_user() {
    if grep -q '^camgate:' "$ROOT/etc/passwd" 2>/dev/null; then
        return 0
    fi
    log "creating the camgate system user"
    local groups=video,audio  # the camera; an ALSA microphone (/dev/snd/*)
    if grep -q '^render:' "$ROOT/etc/group"; then groups=$groups,render; fi
    useradd ${ROOT:+--root "$ROOT"} --system --user-group --groups "$groups" \
        --home-dir /var/lib/camgate --no-create-home --shell /usr/sbin/nologin camgate
}

# A scratch directory inside the target, removed when setup.sh ends.
STAGE=
make_stage() {
    STAGE=/var/tmp/camgate-setup.$$
    rm -rf "$ROOT$STAGE"
    mkdir -p "$ROOT$STAGE/wheels/docs"
    trap 'rm -rf "$ROOT$STAGE"' EXIT
}

# camgate's wheel built from this checkout, with its dependencies', by the target's own
# Python (the right architecture and version even in an image's chroot).
build_wheels() {
    local checkout=$HERE/../../..
    [[ -f $checkout/pyproject.toml ]] ||
        die "no --wheels and no camgate checkout around $HERE to build from"
    log "building camgate's wheels from the checkout $(cd "$checkout" && pwd)"
    mkdir -p "$ROOT$STAGE/src"
    tar -C "$checkout" --exclude=./.venv --exclude=./.git --exclude=./build \
        --exclude=__pycache__ --exclude='*.egg-info' -cf - . | tar -C "$ROOT$STAGE/src" -xf -
    in_target python3 -m venv "$STAGE/build-venv" ||
        die "cannot create a virtualenv: is python3-venv installed?"
    in_target env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$STAGE/build-venv/bin/pip" wheel -q -w "$STAGE/wheels" "$STAGE/src" ||
        die "could not build the wheels (the dependencies come from the package index: is the network up?)"
}

install_python() {
    make_stage
    if [[ -n $WHEELS ]]; then
        log "installing camgate from $WHEELS (offline)"
        compgen -G "$WHEELS/camgate-*.whl" >/dev/null || die "no camgate wheel in $WHEELS"
        cp "$WHEELS"/*.whl "$ROOT$STAGE/wheels/" || die "cannot copy the wheels from $WHEELS"
    else
        build_wheels
    fi
    local doc
    for doc in README.md camgate.example.yaml SECURITY.md; do
        if [[ -f $HERE/../../../$doc ]]; then
            cp "$HERE/../../../$doc" "$ROOT$STAGE/wheels/docs/"
        fi
    done
    # A new virtualenv, checked, then switched to (app/camgate-update).
    in_target /usr/local/sbin/camgate-update --wheels "$STAGE/wheels" ||
        die "camgate was not installed (see above); what was installed before is unchanged"
}

install_files() {
    install -d -m 755 "$ROOT/etc/camgate"
    if [[ ! -e $ROOT/etc/camgate/camgate.yaml ]]; then  # kept on upgrade: it is the user's
        install -m 640 "$HERE/camgate.yaml" "$ROOT/etc/camgate/camgate.yaml"
        log "installed the default config /etc/camgate/camgate.yaml"
    fi
    # camgate reads it (group), root owns it; it may hold camera passwords.
    chgrp "$(gid_of camgate)" "$ROOT/etc/camgate/camgate.yaml" 2>/dev/null || true
    install -d "$ROOT/etc/systemd/system" "$ROOT/usr/local/sbin"
    install -m 644 "$HERE/camgate.service" "$ROOT/etc/systemd/system/camgate.service"
    install -m 644 "$HERE/camgate-firstboot.service" \
        "$ROOT/etc/systemd/system/camgate-firstboot.service"
    install -m 644 "$HERE/camgate-boot-report.service" \
        "$ROOT/etc/systemd/system/camgate-boot-report.service"
    install -m 644 "$HERE/camgate-update.service" \
        "$ROOT/etc/systemd/system/camgate-update.service"
    install -m 755 "$HERE/camgate-firstboot" "$ROOT/usr/local/sbin/camgate-firstboot"
    install -m 755 "$HERE/camgate-update" "$ROOT/usr/local/sbin/camgate-update"
    # Browsers and apps that browse mDNS find the viewer (Avahi serves camgate.local).
    install -d "$ROOT/etc/avahi/services"
    install -m 644 "$HERE/camgate.avahi.service" "$ROOT/etc/avahi/services/camgate.service"
}

gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group"; }

enable_units() {
    local wants=$ROOT/etc/systemd/system/multi-user.target.wants
    install -d "$wants"
    # Symlinks, as `systemctl enable` makes them: works in a chroot without systemd running.
    local unit
    for unit in $UNITS; do
        ln -sf "/etc/systemd/system/$unit" "$wants/$unit"
    done
    if [[ -z $ROOT ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
    fi
}

create_user
install_files
if [[ $SKIP_PYTHON -eq 0 ]]; then install_python; fi
if [[ $ENABLE -eq 1 ]]; then enable_units; fi
log "done"

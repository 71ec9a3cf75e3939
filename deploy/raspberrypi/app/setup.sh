#!/usr/bin/env bash
# The camgate app layer: user, virtualenv, package, config, systemd unit, first-boot hook.
# One source of truth, run by deploy/raspberrypi/install.sh on a running Pi and by both
# image recipes inside the image's root. Idempotent: run it again to upgrade.
#
#   setup.sh [--root DIR] [--wheels DIR] [--skip-python] [--no-enable]
#
#   --root DIR     install into DIR as the target's / (default /; an image being built)
#   --wheels DIR   install camgate and its dependencies from these wheels, offline
#                  (default: camgate from PyPI, or the version pinned by $CAMGATE_SPEC)
#   --skip-python  lay out files and the user only (tests in a throwaway root)
#   --no-enable    install the unit without enabling it
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
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
ROOT=${ROOT%/}
PREFIX=/opt/camgate
log() { echo "camgate setup: $*"; }

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
    local groups=video
    grep -q '^render:' "$ROOT/etc/group" && groups=video,render
    useradd ${ROOT:+--root "$ROOT"} --system --user-group --groups "$groups" \
        --home-dir /var/lib/camgate --no-create-home --shell /usr/sbin/nologin camgate
}

install_python() {
    # --system-site-packages: Raspberry Pi OS ships picamera2 and libcamera as apt packages.
    if [[ ! -x $ROOT$PREFIX/bin/python ]]; then
        log "creating the virtualenv $PREFIX"
        in_target python3 -m venv --system-site-packages "$PREFIX"
    fi
    if [[ -n $WHEELS ]]; then
        log "installing camgate from $WHEELS (offline)"
        local inside=$WHEELS
        if [[ -n $ROOT ]]; then  # the wheels must be visible inside the target
            inside=/tmp/camgate-wheels
            rm -rf "$ROOT$inside"
            cp -r "$WHEELS" "$ROOT$inside"
        fi
        in_target "$PREFIX/bin/pip" install -q --no-index --find-links "$inside" --upgrade camgate
        [[ -n $ROOT ]] && rm -rf "${ROOT:?}$inside"
    else
        log "installing ${CAMGATE_SPEC:-camgate} from PyPI"
        in_target "$PREFIX/bin/pip" install -q --upgrade "${CAMGATE_SPEC:-camgate}"
    fi
}

install_files() {
    install -d -m 755 "$ROOT/etc/camgate" "$ROOT$PREFIX/share/camgate"
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
    install -m 755 "$HERE/camgate-firstboot" "$ROOT/usr/local/sbin/camgate-firstboot"
    # Browsers and apps that browse mDNS find the viewer (Avahi serves camgate.local).
    install -d "$ROOT/etc/avahi/services"
    install -m 644 "$HERE/camgate.avahi.service" "$ROOT/etc/avahi/services/camgate.service"
    local doc
    for doc in README.md camgate.example.yaml SECURITY.md; do
        if [[ -f $HERE/../../../$doc ]]; then
            install -m 644 "$HERE/../../../$doc" "$ROOT$PREFIX/share/camgate/$doc"
        fi
    done
}

gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group"; }

enable_units() {
    local wants=$ROOT/etc/systemd/system/multi-user.target.wants
    install -d "$wants"
    # Symlinks, as `systemctl enable` makes them: works in a chroot without systemd running.
    local unit
    for unit in camgate.service camgate-firstboot.service camgate-boot-report.service; do
        ln -sf "/etc/systemd/system/$unit" "$wants/$unit"
    done
    if [[ -z $ROOT ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
    fi
}

create_user
install_files
[[ $SKIP_PYTHON -eq 1 ]] || install_python
[[ $ENABLE -eq 1 ]] && enable_units
log "done"

#!/usr/bin/env bash
# Remove what install.sh added: the service, the virtualenv, the user.
#
#   sudo deploy/raspberrypi/uninstall.sh [--purge] [--root DIR]
#
# Keeps /etc/camgate (your config) and /var/lib/camgate (accounts, certificate) unless
# --purge. Debian packages (python3, avahi-daemon, ...) stay: other software may use them.
set -euo pipefail

PURGE=0
ROOT=
while [[ $# -gt 0 ]]; do
    case $1 in
        --purge) PURGE=1; shift ;;
        --root) ROOT=${2%/}; shift 2 ;;
        -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "uninstall.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [[ -z $ROOT ]] && [[ -d /run/systemd/system ]]; then
    systemctl disable --now camgate.service camgate-firstboot.service \
        camgate-update.service camgate-boot-report.service 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/camgate.service" \
    "$ROOT/etc/systemd/system/camgate-firstboot.service" \
    "$ROOT/etc/systemd/system/multi-user.target.wants/camgate.service" \
    "$ROOT/etc/systemd/system/multi-user.target.wants/camgate-firstboot.service" \
    "$ROOT/etc/systemd/system/camgate-boot-report.service" \
    "$ROOT/etc/systemd/system/multi-user.target.wants/camgate-boot-report.service" \
    "$ROOT/etc/systemd/system/camgate-update.service" \
    "$ROOT/etc/systemd/system/multi-user.target.wants/camgate-update.service" \
    "$ROOT/usr/local/sbin/camgate-firstboot" \
    "$ROOT/usr/local/sbin/camgate-update" \
    "$ROOT/etc/avahi/services/camgate.service"
rm -rf "$ROOT/opt/camgate" "$ROOT/opt/camgate-releases"
if grep -q '^camgate:' "$ROOT/etc/passwd" 2>/dev/null; then
    userdel ${ROOT:+--root "$ROOT"} camgate
fi
if [[ $PURGE -eq 1 ]]; then
    rm -rf "$ROOT/etc/camgate" "$ROOT/var/lib/camgate"
fi
if [[ -z $ROOT ]] && [[ -d /run/systemd/system ]]; then systemctl daemon-reload; fi
echo "uninstall.sh: camgate removed$([[ $PURGE -eq 1 ]] && echo ", with its config and state")"

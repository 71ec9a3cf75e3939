#!/usr/bin/env bash
# Install (or upgrade) camgate on Raspberry Pi OS Lite (bookworm, arm64) or Debian 12.
#
#   sudo deploy/raspberrypi/install.sh [--wheels DIR] [--hostname NAME] [--with-mosquitto]
#
# Installs the camgate of the checkout it is run from: apt-get update, the Debian packages
# camgate needs (python3-picamera2 on Raspberry Pi OS), then the app layer (app/setup.sh):
# a `camgate` system user in the video group, camgate's wheels built from this checkout in
# a virtualenv (/opt/camgate links to it; --system-site-packages, so the apt picamera2 and
# libcamera are visible), /etc/camgate/camgate.yaml, the hardened systemd units (enabled and
# started), Avahi so the viewer is at http://<hostname>.local:8080. Running it again from a
# newer checkout upgrades in place and keeps /etc/camgate and /var/lib/camgate. Any failure
# stops it with a message and a non-zero exit; the camgate installed before keeps running.
#   --wheels DIR       install camgate from these wheels (offline) instead of this checkout
#   --hostname NAME    also rename the Pi (e.g. `camgate` for http://camgate.local:8080)
#   --with-mosquitto   also install the Mosquitto MQTT broker (for Home Assistant)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WHEELS=()
HOSTNAME_WANTED=
MOSQUITTO=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --wheels) WHEELS=(--wheels "$2"); shift 2 ;;
        --hostname) HOSTNAME_WANTED=$2; shift 2 ;;
        --with-mosquitto) MOSQUITTO=1; shift ;;
        -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
die() { echo "install.sh: error: $*" >&2; exit 1; }
trap 'echo "install.sh: error: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
set -E
[[ $EUID -eq 0 ]] || die "run as root (sudo)"

live_systemd() { [[ -d /run/systemd/system ]]; }

echo "install.sh: apt-get update"
apt-get update -q || die "apt-get update failed: is the network up, are /etc/apt/sources.list* right?"
packages=(python3 python3-venv avahi-daemon ca-certificates)
if [[ $MOSQUITTO -eq 1 ]]; then packages+=(mosquitto); fi
echo "install.sh: apt packages: ${packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" ||
    die "apt-get could not install ${packages[*]} (see above)"

# The Pi camera: Raspberry Pi OS has picamera2 (and libcamera) as apt packages; Debian does
# not. Without it camgate still serves RTSP/ONVIF cameras. Not fatal, but said plainly.
PICAMERA_NOTE=
if [[ $(apt-cache policy python3-picamera2 2>/dev/null | awk '/Candidate:/ { print $2 }') =~ ^(|\(none\))$ ]]; then
    if [[ -f /etc/rpi-issue ]]; then
        PICAMERA_NOTE="python3-picamera2 is not in the package lists: is archive.raspberrypi.com missing from /etc/apt/sources.list.d? The Pi camera will not work"
    else
        PICAMERA_NOTE="python3-picamera2 was not installed: this is not Raspberry Pi OS and Debian has no such package, so the Pi camera will not work (RTSP/ONVIF cameras will)"
    fi
elif ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-picamera2; then
    PICAMERA_NOTE="apt-get could not install python3-picamera2 (see above): the Pi camera will not work"
fi
if [[ -n $PICAMERA_NOTE ]]; then echo "install.sh: WARNING: $PICAMERA_NOTE" >&2; fi

if [[ -n $HOSTNAME_WANTED ]]; then
    hostnamectl set-hostname "$HOSTNAME_WANTED" || die "cannot set the hostname $HOSTNAME_WANTED"
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$HOSTNAME_WANTED/" /etc/hosts
fi

# The app layer: camgate from this checkout (or --wheels) into a new virtualenv; the old
# version stays in place until the new one runs.
"$HERE/app/setup.sh" "${WHEELS[@]}" ||
    die "camgate was not installed (see above); a camgate installed before is unchanged"

units=(camgate-firstboot.service camgate-update.service camgate.service camgate-boot-report.service)
if live_systemd; then
    systemctl daemon-reload || die "systemctl daemon-reload failed"
    systemctl enable "${units[@]}" || die "systemctl could not enable ${units[*]}"
    # restart: starts it on a first install, runs the new version on an upgrade.
    systemctl restart camgate.service ||
        die "camgate did not start: see journalctl -u camgate"
    echo "install.sh: camgate $(/opt/camgate/bin/camgate --version | cut -d' ' -f2) runs:" \
        "http://$(hostname).local:8080 (logs: journalctl -u camgate)"
else
    echo "install.sh: systemd is not running here (a chroot or container): the units are" \
        "enabled and camgate starts at the next boot"
fi
if [[ -n $PICAMERA_NOTE ]]; then echo "install.sh: WARNING: $PICAMERA_NOTE" >&2; fi

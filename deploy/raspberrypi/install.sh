#!/usr/bin/env bash
# Install (or upgrade) camgate on Raspberry Pi OS Lite (bookworm, arm64) or Debian 12.
#
#   sudo deploy/raspberrypi/install.sh [--wheels DIR] [--hostname NAME] [--with-mosquitto]
#
# Installs the Debian packages camgate needs (python3-picamera2 on Raspberry Pi OS),
# then the app layer (app/setup.sh): a `camgate` system user in the video group, a
# virtualenv at /opt/camgate (--system-site-packages, so the apt picamera2/libcamera are
# visible), /etc/camgate/camgate.yaml (kept on upgrade), the hardened systemd unit, and
# Avahi so the viewer is at http://<hostname>.local:8080. Running it again upgrades.
#   --wheels DIR       install camgate from these wheels instead of PyPI
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
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }

packages=(python3 python3-venv python3-pip avahi-daemon ca-certificates)
# Raspberry Pi OS has picamera2 (and libcamera) as apt packages; plain Debian does not.
if apt-cache show python3-picamera2 >/dev/null 2>&1; then packages+=(python3-picamera2); fi
[[ $MOSQUITTO -eq 1 ]] && packages+=(mosquitto)
echo "install.sh: apt packages: ${packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"

if [[ -n $HOSTNAME_WANTED ]]; then
    hostnamectl set-hostname "$HOSTNAME_WANTED"
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$HOSTNAME_WANTED/" /etc/hosts
fi

"$HERE/app/setup.sh" "${WHEELS[@]}"
systemctl daemon-reload
systemctl enable camgate-firstboot.service camgate.service camgate-boot-report.service
systemctl restart camgate.service
echo "install.sh: camgate runs: http://$(hostname).local:8080 (logs: journalctl -u camgate)"

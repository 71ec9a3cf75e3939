#!/usr/bin/env bash
# Boot the Debian twin image under QEMU (-M virt, kernel and initrd read from the image's
# boot partition) and pass only if it comes up healthy:
#   - a camgate.yaml dropped on the boot partition is applied at first boot (it sets the
#     admin password and preloads the demo camera),
#   - /api/health answers through a loopback port forward and the demo camera is live,
#   - `systemctl is-system-running` inside says "running" (no failed unit).
#
#   sudo images/test.sh [IMAGE]     (default: build/image/camgate-debian-arm64.img)
#
# Prints the boot-to-healthy time. Needs qemu-system-arm, mtools, fdisk, curl or python3.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${1:-$REPO/build/image/camgate-debian-arm64.img}
TIMEOUT_S=${CAMGATE_BOOT_TIMEOUT:-300}
PASSWORD="image test password"
[[ -f $IMAGE ]] || { echo "test.sh: no image at $IMAGE (build it: make image)" >&2; exit 2; }

WORK=$(mktemp -d)
QEMU_PID=
cleanup() {
    if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "image test: $(date -u +%H:%M:%S) $*"; }

cp --sparse=always "$IMAGE" "$WORK/disk.img"
boot_start=$(sfdisk -d "$WORK/disk.img" | awk -F'[=,]' '/start=/ { print $2; exit }' | tr -d ' ')
FAT="$WORK/disk.img@@$((boot_start * 512))"

# Kernel and initrd as raspi-firmware put them on the boot partition.
kernel=$(mdir -b -i "$FAT" :: | sed 's|^::/||' | grep -m1 '^vmlinuz')
initrd=$(mdir -b -i "$FAT" :: | sed 's|^::/||' | grep -m1 '^initrd.img')
mcopy -i "$FAT" "::$kernel" "$WORK/vmlinuz"
mcopy -i "$FAT" "::$initrd" "$WORK/initrd.img"

# What a user would drop on the card before the first boot.
cat >"$WORK/camgate.yaml" <<EOF
listen: 0.0.0.0:8080
auth: {admin_password: "$PASSWORD"}
cameras:
  - {name: demo, source: demo, preload: true, demo: {width: 320, height: 240, fps: 10, bitrate_kbps: 300}}
EOF
mcopy -i "$FAT" "$WORK/camgate.yaml" ::camgate.yaml

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "booting $kernel under QEMU (port forward 127.0.0.1:$port -> 8080)"
started=$SECONDS
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
    -append "root=LABEL=camgate-root rootfstype=ext4 rootwait console=ttyAMA0 systemd.journald.forward_to_console=1" \
    -drive "file=$WORK/disk.img,format=raw,if=none,id=disk" -device virtio-blk-pci,drive=disk \
    -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$port-:8080" -device virtio-net-pci,netdev=net \
    -display none -monitor none -serial "file:$WORK/serial.log" &
QEMU_PID=$!

health() {
    python3 - "$port" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/health", timeout=5) as r:
        data = json.load(r)
except Exception:
    sys.exit(1)
print(data.get("cameras_live", 0))
PY
}

live=
while ((SECONDS - started < TIMEOUT_S)); do
    kill -0 "$QEMU_PID" 2>/dev/null || { tail -30 "$WORK/serial.log"; echo "test.sh: QEMU exited" >&2; exit 1; }
    if live=$(health) && [[ $live -ge 1 ]]; then break; fi
    live=
    sleep 2
done
if [[ -z $live ]]; then
    tail -40 "$WORK/serial.log"
    echo "test.sh: camgate not healthy with a live camera after $TIMEOUT_S s" >&2
    exit 1
fi
healthy=$((SECONDS - started))
log "healthy, demo camera live, $healthy s after power-on"

# The first-boot config was applied: its password signs in.
python3 - "$port" "$PASSWORD" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
request = urllib.request.Request(
    base + "/api/auth/login", method="POST",
    data=json.dumps({"user": "admin", "password": sys.argv[2]}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=10) as r:
    cookie = r.headers["Set-Cookie"].split(";")[0]
cameras = urllib.request.Request(base + "/api/cameras", headers={"Cookie": cookie})
with urllib.request.urlopen(cameras, timeout=10) as r:
    state = {c["name"]: c["state"] for c in json.load(r)}
assert state == {"demo": "live"}, state
PY
log "signed in with the password from the boot partition"

while ((SECONDS - started < TIMEOUT_S)) && ! grep -q 'camgate boot: [a-z]' "$WORK/serial.log"; do
    sleep 2
done
grep 'camgate boot:' "$WORK/serial.log" || true
if ! grep -q 'camgate boot: running' "$WORK/serial.log"; then
    echo "test.sh: the system did not come up cleanly (see the failed units above)" >&2
    exit 1
fi
log "PASSED: boot-to-healthy ${healthy} s, system running, no failed unit"

#!/usr/bin/env bash
# Boot-test the Debian twin image the ways a Pi would meet it, and pass only if all hold:
#   0. static check per Pi model (images/pi_boot_check.py): firmware, config.txt, device
#      tree, kernel, and the SD card's drivers in the initramfs;
#   1. QEMU -M virt (kernel and initrd read from the image's boot partition), the disk
#      made larger than the image, as a card is, with what a user drops on the boot
#      partition: camgate.yaml (admin password, demo camera), `network` (Wi-Fi, country),
#      `authorized_keys`. Checks: /api/health with a live camera, the password signs in,
#      "camgate boot: running" (no failed unit), and over SSH with that key as the admin
#      user: sudo, the root file system grown to the disk, wpa_supplicant running on the
#      first boot with the country set (a simulated radio, mac80211_hwsim), regulatory.db,
#      a machine-id of this card's own;
#   2. the update bundle (deploy/raspberrypi/make-update.sh, when this tree has it): power
#      off, drop a bundle of this checkout with a higher version on the boot partition,
#      boot: the new version answers, config and password kept; then a corrupt bundle:
#      the version stays; the boot partition has them as .applied and .failed and
#      camgate-update.log says why;
#   3. the way a Pi 3 boots: QEMU -M raspi3b with the image's kernel, initramfs and
#      bcm2837-rpi-3-b.dtb from its boot partition and cmdline.txt, the image as the SD
#      card (with a camgate.yaml without a password), QEMU's usb-net as its wired port:
#      "camgate boot: running" on the serial console, /api/health with the camera live
#      through usb0, the console's first-visit setup code chooses the password; its
#      machine-id and SSH host key differ from the first card's.
#
#   sudo images/test.sh [IMAGE]     (default: build/image/camgate-debian-arm64.img)
#   CAMGATE_IMAGE_TEST_SKIP_RASPI=1 skips step 3 (the slowest, ~10 min on 2 cores).
#   CAMGATE_BOOT_TIMEOUT (300 s) per boot, CAMGATE_UPDATE_TIMEOUT (900 s) more for a boot
#   that applies a bundle, CAMGATE_RASPI_BOOT_TIMEOUT (1500 s) for raspi3b.
#
# Prints the timings. Needs qemu-system-arm, mtools, fdisk, e2fsprogs, openssh-client,
# python3.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${1:-$REPO/build/image/camgate-debian-arm64.img}
TIMEOUT_S=${CAMGATE_BOOT_TIMEOUT:-300}
RASPI_TIMEOUT_S=${CAMGATE_RASPI_BOOT_TIMEOUT:-1500}
# A boot that applies an update bundle also installs a release (pip, emulated): extra time.
UPDATE_TIMEOUT_S=${CAMGATE_UPDATE_TIMEOUT:-900}
PASSWORD="image test password"
ADMIN=camgate-admin
[[ -f $IMAGE ]] || { echo "test.sh: no image at $IMAGE (build it: make image)" >&2; exit 2; }

WORK=$(mktemp -d)
QEMU_PID=
cleanup() {
    if [[ -n $QEMU_PID ]]; then kill "$QEMU_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "image test: $(date -u +%H:%M:%S) $*"; }
die() { echo "test.sh: FAILED: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log "static boot check per Pi model"
python3 "$REPO/images/pi_boot_check.py" "$IMAGE" || die "the static boot check"

# The boot partition of a disk image, for mtools.
fat_of() {
    local start
    start=$(sfdisk -d "$1" | awk -F'[=,]' '/start=/ { print $2; exit }' | tr -d ' ')
    echo "$1@@$((start * 512))"
}
# A file of the root partition (ext4, read with debugfs: no mounts).
root_file() {
    local disk=$1 path=$2 start size
    read -r start size < <(sfdisk -d "$disk" | awk -F'[=,]' '/start=/ { s = $2; z = $4 } END { print s, z }' | tr -s ' ')
    dd if="$disk" of="$WORK/root-part.img" bs=512 skip="$start" count="$size" conv=sparse status=none
    # A card switched off running: its journal holds the latest metadata.
    e2fsck -y -E journal_only "$WORK/root-part.img" >/dev/null 2>&1 || true
    debugfs -R "cat $path" "$WORK/root-part.img" 2>/dev/null
    rm -f "$WORK/root-part.img"
}

# What a user drops on the card before the first boot.
ssh-keygen -q -t ed25519 -N '' -C "image test" -f "$WORK/admin_key"
cat >"$WORK/camgate.yaml" <<EOF
listen: 0.0.0.0:8080
auth: {admin_password: "$PASSWORD"}
cameras:
  - {name: demo, source: demo, preload: true, demo: {width: 320, height: 240, fps: 10, bitrate_kbps: 300}}
EOF
printf 'ssid=camgate test net\npsk=not a real network\ncountry=gb\n' >"$WORK/network"
# The same without a password: the console shows the first visit's setup code.
sed '/^auth:/d' "$WORK/camgate.yaml" >"$WORK/camgate-no-password.yaml"
prepare_card() {  # prepare_card DISK [CONFIG]
    local disk=$1 config=${2:-$WORK/camgate.yaml} fat
    fat=$(fat_of "$disk")
    mcopy -i "$fat" "$config" ::camgate.yaml
    mcopy -i "$fat" "$WORK/network" ::network
    mcopy -i "$fat" "$WORK/admin_key.pub" ::authorized_keys
}

# ---- 1. -M virt ----
disk=$WORK/disk.img
cp --sparse=always "$IMAGE" "$disk"
truncate -s 4G "$disk"  # a 4 GB card: the root partition must grow to it
prepare_card "$disk"
FAT=$(fat_of "$disk")
kernel=$(mdir -b -i "$FAT" :: | sed 's|^::/||' | grep -m1 '^vmlinuz')
initrd=$(mdir -b -i "$FAT" :: | sed 's|^::/||' | grep -m1 '^initrd.img')
mcopy -i "$FAT" "::$kernel" "$WORK/vmlinuz"
mcopy -i "$FAT" "::$initrd" "$WORK/initrd.img"
http_port=$(free_port)
ssh_port=$(free_port)

boot_virt() {  # boot_virt NAME: start QEMU on $disk, serial log in $WORK/NAME.log
    SERIAL=$WORK/$1.log
    log "$1: booting $kernel under QEMU -M virt (127.0.0.1:$http_port -> 8080, :$ssh_port -> 22)"
    BOOTED=$SECONDS
    # mac80211_hwsim: a simulated Wi-Fi radio (wlan0), so the Wi-Fi set-up really runs.
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
        -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -append "root=LABEL=camgate-root rootfstype=ext4 rootwait console=ttyAMA0 modules-load=mac80211_hwsim systemd.journald.forward_to_console=1" \
        -drive "file=$disk,format=raw,if=none,id=disk" -device virtio-blk-pci,drive=disk \
        -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$http_port-:8080,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
        -device virtio-net-pci,netdev=net \
        -display none -monitor none -serial "file:$SERIAL" &
    QEMU_PID=$!
}

health() {  # prints "<cameras_live> <version>" once /api/health answers
    python3 - "$http_port" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/health", timeout=5) as r:
        data = json.load(r)
except Exception:
    sys.exit(1)
print(data.get("cameras_live", 0), data.get("version", "?"))
PY
}

wait_healthy() {  # wait_healthy [LIMIT_S]: sets VERSION and HEALTHY_S
    local answer='' limit=${1:-$TIMEOUT_S}
    while ((SECONDS - BOOTED < limit)); do
        kill -0 "$QEMU_PID" 2>/dev/null || { tail -30 "$SERIAL"; die "QEMU exited"; }
        if answer=$(health) && [[ ${answer%% *} -ge 1 ]]; then break; fi
        answer=
        sleep 2
    done
    if [[ -z $answer ]]; then
        tail -40 "$SERIAL"
        die "camgate not healthy with a live camera after $limit s"
    fi
    HEALTHY_S=$((SECONDS - BOOTED))
    VERSION=${answer#* }
}

sign_in() {
    python3 - "$http_port" "$PASSWORD" <<'PY'
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
}

wait_report() {  # wait_report LOG TIMEOUT: the boot report's verdict
    local file=$1 limit=$2
    while ((SECONDS - BOOTED < limit)) && ! grep -qa 'camgate boot: [a-z]' "$file" 2>/dev/null; do
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 2
    done
    sleep 3  # the lines after the verdict (name, sizes)
    grep -a 'camgate boot:' "$file" || true
    grep -qa 'camgate boot: running' "$file" || die "the system did not come up cleanly (see the failed units above)"
}

on_card() {  # on_card COMMAND...: run as the admin over SSH, with the key from the boot partition
    ssh -q -i "$WORK/admin_key" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=10 \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "$ADMIN@127.0.0.1" "$@"
}

power_off() {
    on_card sudo systemctl poweroff || true
    local waited=0
    while kill -0 "$QEMU_PID" 2>/dev/null && ((waited < 120)); do sleep 1; waited=$((waited + 1)); done
    kill -0 "$QEMU_PID" 2>/dev/null && die "the card did not power off"
    wait "$QEMU_PID" || true
    QEMU_PID=
}

boot_virt first-boot
wait_healthy
FIRST_VERSION=$VERSION
log "healthy, demo camera live, camgate $VERSION, $HEALTHY_S s after power-on"
VIRT_HEALTHY_S=$HEALTHY_S
sign_in
log "signed in with the password from the boot partition"
wait_report "$SERIAL" "$TIMEOUT_S"

log "SSH as $ADMIN with the key from the boot partition"
# shellcheck disable=SC2016  # expanded on the card
facts=$(on_card 'set -e
    sudo -n true && echo sudo=ok
    echo "root_bytes=$(df -B1 --output=size / | tail -1 | tr -d " ")"
    echo "wpa=$(systemctl is-active wpa_supplicant@wlan0.service)"
    echo "regdom=$(/usr/sbin/iw reg get | awk "/^global/ { g = 1 } g && /^country/ { print \$2; exit }")"
    echo "regdb=$(test -s /lib/firmware/regulatory.db && echo yes)"
    echo "machine_id=$(cat /etc/machine-id)"
    echo "keys_mode=$(stat -c %a:%U ~/.ssh/authorized_keys)"
    echo "boot_files=$(ls /boot/firmware | grep -cE "^(network|authorized_keys|camgate.yaml)$" || true)"') ||
    die "could not log in over SSH with the key from the boot partition"
echo "$facts" | sed 's/^machine_id=.*/machine_id=(set)/; s/^/  /'
fact() { echo "$facts" | sed -n "s/^$1=//p"; }
[[ $(fact sudo) == ok ]] || die "the admin has no sudo"
(($(fact root_bytes) > 3 * 1024 * 1024 * 1024)) || die "the root file system was not grown to the 4 GB disk"
[[ $(fact wpa) == active ]] || die "wpa_supplicant@wlan0 is not running on the first boot"
[[ $(fact regdom) == GB: ]] || die "the Wi-Fi country is not GB"
[[ $(fact regdb) == yes ]] || die "no regulatory.db"
[[ $(fact machine_id) =~ ^[0-9a-f]{32}$ ]] || die "no machine-id made on the first boot"
[[ $(fact keys_mode) == "600:$ADMIN" ]] || die "authorized_keys: $(fact keys_mode)"
[[ $(fact boot_files) == 0 ]] || die "settings left on the boot partition"
FIRST_MACHINE_ID=$(fact machine_id)
log "SSH key login, sudo, root grown to the disk, Wi-Fi up with country GB on the first boot"

# ---- 2. the update bundle ----
UPDATE_NOTE="not run: this tree has no deploy/raspberrypi/make-update.sh"
if [[ -x $REPO/deploy/raspberrypi/make-update.sh ]]; then
    log "update: a bundle of this checkout with a higher version"
    src=$WORK/newer
    mkdir -p "$src"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        (cd "$REPO" && xargs -0 cp --parents -t "$src")
    sed -i -E 's/^(__version__ = ")([^"]+)"/\1\2.post1"/' "$src/gateway/__init__.py"
    NEW_VERSION="$FIRST_VERSION.post1"
    bash "$src/deploy/raspberrypi/make-update.sh" --out "$WORK/update" ||
        die "could not build the update bundle"
    bundle=$(ls "$WORK"/update/camgate-update-*.tar)
    power_off
    mcopy -i "$FAT" "$bundle" "::${bundle##*/}"
    boot_virt update
    wait_healthy $((TIMEOUT_S + UPDATE_TIMEOUT_S))
    UPDATE_HEALTHY_S=$HEALTHY_S
    [[ $VERSION == "$NEW_VERSION" ]] || die "after the update camgate is $VERSION, not $NEW_VERSION"
    sign_in
    wait_report "$SERIAL" $((TIMEOUT_S + UPDATE_TIMEOUT_S))
    log "update: camgate $VERSION healthy $UPDATE_HEALTHY_S s after power-on, password and config kept"
    # A corrupt bundle (a newer version, its checksums wrong) changes nothing.
    mkdir -p "$WORK/corrupt"
    tar -C "$WORK/corrupt" -xf "$bundle"
    echo "$FIRST_VERSION.post2" >"$WORK/corrupt/VERSION"
    find "$WORK/corrupt/wheels" -name 'camgate-*.whl' -exec sh -c 'echo garbage >>"$1"' _ {} \;
    tar -C "$WORK/corrupt" -cf "$WORK/camgate-update-$FIRST_VERSION.post2.tar" .
    power_off
    mcopy -i "$FAT" "$WORK/camgate-update-$FIRST_VERSION.post2.tar" ::
    boot_virt corrupt-update
    wait_healthy $((TIMEOUT_S + UPDATE_TIMEOUT_S))
    [[ $VERSION == "$NEW_VERSION" ]] || die "after a corrupt bundle camgate is $VERSION, not $NEW_VERSION"
    sign_in
    log "update: a corrupt bundle left camgate $VERSION running"
    UPDATE_NOTE="passed ($FIRST_VERSION -> $NEW_VERSION; corrupt bundle refused)"
fi
power_off
if [[ -n ${NEW_VERSION:-} ]]; then
    # What the user finds on the boot partition: each bundle marked, the reasons in the log.
    boot_files=$(mdir -b -i "$FAT" :: | sed 's|^::/||')
    grep -qx "camgate-update-$NEW_VERSION.tar.applied" <<<"$boot_files" ||
        die "the applied bundle is not marked .applied: $(grep camgate-update <<<"$boot_files" | tr '\n' ' ')"
    grep -qx "camgate-update-$FIRST_VERSION.post2.tar.failed" <<<"$boot_files" ||
        die "the corrupt bundle is not marked .failed: $(grep camgate-update <<<"$boot_files" | tr '\n' ' ')"
    update_log=$(mcopy -i "$FAT" ::camgate-update.log -) || die "no camgate-update.log on the boot partition"
    printf '  %s\n' "$update_log"
    grep -q "camgate-update-$FIRST_VERSION.post2.tar: FAILED, the old version is kept: .*damaged" \
        <<<"$update_log" || die "camgate-update.log does not say why the corrupt bundle failed"
fi

# ---- 3. -M raspi3b: the Pi 3's own device tree, the image as its SD card ----
RASPI_NOTE="skipped (CAMGATE_IMAGE_TEST_SKIP_RASPI)"
if [[ -z ${CAMGATE_IMAGE_TEST_SKIP_RASPI:-} ]]; then
    sd=$WORK/sd.img
    cp --sparse=always "$IMAGE" "$sd"
    # An SD card's size is a power of two for QEMU's SD model.
    size=$(stat -c %s "$sd") card=$((1024 * 1024 * 1024))
    while ((card < size)); do card=$((card * 2)); done
    truncate -s "$card" "$sd"
    prepare_card "$sd" "$WORK/camgate-no-password.yaml"
    SD_FAT=$(fat_of "$sd")
    mcopy -i "$SD_FAT" ::bcm2837-rpi-3-b.dtb "$WORK/pi3.dtb"
    # cmdline.txt as the Pi's firmware would pass it, with the console on the Pi's UART
    # (the last console= gets the boot report; tty0 is HDMI, absent here).
    cmdline=$(mcopy -i "$SD_FAT" ::cmdline.txt - | tr -d '\r\n' | sed 's/ *console=tty0//')
    log "raspi3b: booting with bcm2837-rpi-3-b.dtb, SD card $((card >> 20)) MiB, cmdline: $cmdline"
    BOOTED=$SECONDS
    http_port=$(free_port)
    # The Pi 3's wired port is on USB; QEMU's raspi3b has none but a usb-net (usb0).
    qemu-system-aarch64 -M raspi3b -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -dtb "$WORK/pi3.dtb" -append "$cmdline" \
        -drive "file=$sd,format=raw,if=sd" \
        -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$http_port-:8080" -device usb-net,netdev=net \
        -display none -monitor none \
        -serial "file:$WORK/raspi-uart0.log" -serial "file:$WORK/raspi-uart1.log" &
    QEMU_PID=$!
    cat_logs() { cat "$WORK/raspi-uart0.log" "$WORK/raspi-uart1.log" 2>/dev/null; }
    while ((SECONDS - BOOTED < RASPI_TIMEOUT_S)) && ! cat_logs | grep -qa 'camgate boot: [a-z]'; do
        kill -0 "$QEMU_PID" 2>/dev/null || { cat_logs | tail -40; die "raspi3b: QEMU exited"; }
        sleep 5
    done
    raspi_s=$((SECONDS - BOOTED))
    if ! cat_logs | grep -qa 'camgate boot: [a-z]'; then
        cat_logs | tail -60
        die "raspi3b: no boot report after $RASPI_TIMEOUT_S s"
    fi
    # /api/health through the USB network, with the demo camera live.
    answer=
    while ((SECONDS - BOOTED < RASPI_TIMEOUT_S)); do
        if answer=$(health) && [[ ${answer%% *} -ge 1 ]]; then break; fi
        answer=
        sleep 5
    done
    [[ -n $answer ]] || { cat_logs | tail -40; die "raspi3b: camgate not healthy through usb0"; }
    raspi_healthy_s=$((SECONDS - BOOTED))
    # The card had no password: the report ends with the setup code once camgate serves.
    code_line='camgate boot: first-visit setup code: [2-9A-Z]{4}-[2-9A-Z]{4}'
    while ((SECONDS - BOOTED < RASPI_TIMEOUT_S)) && ! cat_logs | grep -qaE "$code_line"; do
        sleep 5
    done
    sleep 5  # the machine-id reaches the card
    cat_logs >"$WORK/raspi.log"
    grep -a 'camgate boot:\|mmc0\|mmcblk0' "$WORK/raspi.log" | head -20 || true
    grep -qa 'camgate boot: running' "$WORK/raspi.log" || die "raspi3b: the system did not come up cleanly"
    code=$(grep -aoE "$code_line" "$WORK/raspi.log" | tail -1 | awk '{ print $NF }')
    [[ -n $code ]] || die "raspi3b: the console shows no setup code for a card without a password"
    # ... and it is the code camgate asks for: the first visit chooses the password with it.
    python3 - "$http_port" "$code" "$PASSWORD" <<'PY' || die "raspi3b: the console's setup code did not set the password"
import json, sys, urllib.request
port, code, password = sys.argv[1:]
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/api/auth/setup", method="POST",
    data=json.dumps({"password": password, "code": code}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=30) as r:
    assert r.status == 200, r.status
PY
    sign_in || die "raspi3b: cannot sign in with the password chosen with the setup code"
    log "raspi3b: healthy through usb0 after $raspi_healthy_s s; the console's setup code chose the password"
    kill "$QEMU_PID"
    wait "$QEMU_PID" || true
    QEMU_PID=
    # Two cards from one image: their own machine-id and SSH host key.
    pi_machine_id=$(root_file "$sd" /etc/machine-id)
    [[ $pi_machine_id =~ ^[0-9a-f]{32}$ ]] || die "raspi3b: no machine-id on the card"
    [[ $pi_machine_id != "$FIRST_MACHINE_ID" ]] || die "two cards with the same machine-id"
    first_key=$(root_file "$disk" /etc/ssh/ssh_host_ed25519_key.pub)
    pi_key=$(root_file "$sd" /etc/ssh/ssh_host_ed25519_key.pub)
    [[ -n $pi_key && $pi_key != "$first_key" ]] || die "two cards with the same SSH host key"
    log "raspi3b: camgate boot: running after $raspi_s s; machine-id and SSH host key its own"
    RASPI_NOTE="running after $raspi_s s, healthy after $raspi_healthy_s s"
fi

log "PASSED: -M virt boot-to-healthy ${VIRT_HEALTHY_S} s; update: $UPDATE_NOTE; raspi3b: $RASPI_NOTE"

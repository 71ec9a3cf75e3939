#!/usr/bin/env bash
# Build the camgate SD card image for Raspberry Pi 3/4 from Debian bookworm arm64 packages
# (the "Debian twin" of the Raspberry Pi OS recipe in images/raspios/; no Pi camera here).
#
#   sudo images/debian/build.sh          -> build/image/camgate-debian-arm64.img.xz (+ .sha256)
#
# Two layers: the base system (Debian packages, kernel, firmware: slow, cached in
# $CAMGATE_IMAGE_CACHE keyed by this script's recipe) and the app layer (camgate's wheels
# and deploy/raspberrypi/app/setup.sh, the same as install.sh: rebuilt every time).
# Assembled without mounts or loop devices: mkfs.ext4 -d, mtools, sfdisk.
# Needs (Debian): mmdebstrap qemu-user-static binfmt-support dosfstools mtools fdisk
# e2fsprogs xz-utils; root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${CAMGATE_IMAGE_OUT:-$REPO/build/image}
CACHE=${CAMGATE_IMAGE_CACHE:-/var/cache/camgate-image}
MIRROR=${CAMGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
NAME=camgate-debian-arm64
BOOT_MB=256
ROOT_LABEL=camgate-root
BOOT_LABEL=CAMGATE-BT

PACKAGES=(
    systemd systemd-sysv systemd-timesyncd systemd-resolved udev dbus kmod
    linux-image-arm64 raspi-firmware initramfs-tools firmware-brcm80211
    iproute2 iw wpasupplicant wireless-regdb avahi-daemon libnss-mdns openssh-server
    python3 python3-venv ca-certificates
    fdisk e2fsprogs sudo  # first boot: grow the root partition; the SSH admin's sudo
)

log() { echo "image: $(date -u +%H:%M:%S) $*"; }
[[ $EUID -eq 0 ]] || { echo "build.sh: run as root (mmdebstrap, chroot, file ownership)" >&2; exit 1; }

recipe_key() {
    { printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}"; cat "$REPO/images/debian/base-hooks.sh"; } |
        sha256sum | cut -c1-16
}

build_base() {
    local tarball=$1
    log "base system: mmdebstrap $SUITE arm64 (cached as $tarball)"
    mkdir -p "$(dirname "$tarball")"
    local hooks=$REPO/images/debian/base-hooks.sh
    # force-confold: keep the config files the setup hook wrote before their packages.
    mmdebstrap --arch=arm64 --variant=minbase --format=tar \
        --components=main,non-free-firmware \
        --dpkgopt=force-confdef --dpkgopt=force-confold \
        --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --setup-hook="$hooks setup \"\$1\" $ROOT_LABEL $BOOT_LABEL" \
        --customize-hook="$hooks customize \"\$1\" $ROOT_LABEL $BOOT_LABEL" \
        "$SUITE" "${tarball%.tar}.partial.tar" "$MIRROR"
    mv "${tarball%.tar}.partial.tar" "$tarball"
}

app_wheels() {
    local dir=$1
    log "app layer: camgate wheel and its aarch64 dependencies"
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -m pip wheel -q --no-deps -w "$dir" "$REPO"
    # Binary wheels for the Pi's Python (bookworm: 3.11, aarch64): nothing compiles on the Pi.
    python3 -m pip download -q --only-binary=:all: --dest "$dir" \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 --platform linux_aarch64 \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        "$dir"/camgate-*.whl
}

first_boot_layer() {
    local rootfs=$1 app=$REPO/deploy/raspberrypi/app
    # Grow the root partition to the card on the first boot (Raspberry Pi OS does its own).
    install -m 755 "$app/camgate-growroot" "$rootfs/usr/local/sbin/camgate-growroot"
    install -m 644 "$app/camgate-growroot.service" "$rootfs/etc/systemd/system/"
    install -d "$rootfs/etc/systemd/system/local-fs.target.wants"
    ln -sf /etc/systemd/system/camgate-growroot.service \
        "$rootfs/etc/systemd/system/local-fs.target.wants/camgate-growroot.service"
    # USB network links by DHCP too (the base matches wired e* and Wi-Fi wlan*): CDC
    # Ethernet and RNDIS links are usb0 (a phone's USB tethering; QEMU raspi3b's usb-net,
    # the image test's only link there: unmatched, nothing goes online and wait-online fails).
    printf '[Match]\nName=usb*\n\n[Network]\nDHCP=yes\nMulticastDNS=no\n' \
        >"$rootfs/etc/systemd/network/60-usb.network"
    # Online once any one link is (wired or Wi-Fi), not all: a Pi with Wi-Fi set up and no
    # cable (or the reverse) must not wait two minutes before camgate starts.
    install -d "$rootfs/etc/systemd/system/systemd-networkd-wait-online.service.d"
    printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any\n' \
        >"$rootfs/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"
    # Every card its own identity: an empty machine-id is made anew on its first boot (and
    # with it DHCP's client id and camgate's MQTT client id); SSH host keys likewise
    # (ssh-host-keys.service); no shared random seed.
    : >"$rootfs/etc/machine-id"
    [[ -L $rootfs/var/lib/dbus/machine-id ]] || rm -f "$rootfs/var/lib/dbus/machine-id"
    rm -f "$rootfs/var/lib/systemd/random-seed" "$rootfs"/etc/ssh/ssh_host_*
}

assemble() {
    local rootfs=$1 image=$2 work=$3
    log "assembling $image"
    # The boot partition: what raspi-firmware put in /boot/firmware (firmware, kernel,
    # initrd, device trees, config.txt, cmdline.txt).
    rm -f "$work/boot.img"
    mkfs.vfat -n "$BOOT_LABEL" -F 32 -C "$work/boot.img" $((BOOT_MB * 1024)) >/dev/null
    mcopy -s -i "$work/boot.img" "$rootfs/boot/firmware/"* ::
    rm -rf "${rootfs:?}/boot/firmware/"*
    # The root partition, sized to its content plus room for state and logs.
    local used_mb root_mb
    used_mb=$(du -sm "$rootfs" | cut -f1)
    root_mb=$((used_mb * 115 / 100 + 256))
    rm -f "$work/root.img"
    mkfs.ext4 -q -L "$ROOT_LABEL" -d "$rootfs" "$work/root.img" "${root_mb}M"
    # MBR: FAT32 (LBA) boot, then Linux root; 4 MiB aligned.
    local boot_sectors=$((BOOT_MB * 2048)) root_sectors=$((root_mb * 2048)) start=8192
    rm -f "$image"
    truncate -s $(((start + boot_sectors + root_sectors) * 512)) "$image"
    sfdisk -q "$image" <<EOF
label: dos
start=$start, size=$boot_sectors, type=c
start=$((start + boot_sectors)), size=$root_sectors, type=83
EOF
    dd if="$work/boot.img" of="$image" bs=512 seek=$start conv=notrunc,sparse status=none
    dd if="$work/root.img" of="$image" bs=512 seek=$((start + boot_sectors)) \
        conv=notrunc,sparse status=none
}

ensure_arm64_emulation() {
    # qemu-user-static runs arm64 programs (package scripts, pip) through binfmt_misc.
    [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && return 0
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable qemu-aarch64
}

main() {
    local started=$SECONDS
    ensure_arm64_emulation
    mkdir -p "$OUT"
    local work=$OUT/work
    rm -rf "$work"
    mkdir -p "$work"
    local base
    base=$CACHE/base-$(recipe_key).tar
    if [[ -f $base ]]; then
        log "base system: cached ($base)"
    else
        build_base "$base"
    fi
    local base_done=$SECONDS

    app_wheels "$work/wheels"
    local rootfs=$work/rootfs
    mkdir -p "$rootfs"
    tar -C "$rootfs" -xf "$base"
    log "app layer: deploy/raspberrypi/app/setup.sh inside the image"
    "$REPO/deploy/raspberrypi/app/setup.sh" --root "$rootfs" --wheels "$work/wheels"
    first_boot_layer "$rootfs"
    "$REPO/images/debian/base-hooks.sh" slim-app "$rootfs"
    local app_done=$SECONDS

    assemble "$rootfs" "$work/$NAME.img" "$work"
    log "compressing"
    # -3: most of -6's size at about half its time (an app-only rebuild is mostly this).
    xz -T0 -3 -f -c "$work/$NAME.img" >"$OUT/$NAME.img.xz"
    (cd "$OUT" && sha256sum "$NAME.img.xz" >"$NAME.img.xz.sha256")
    cp "$work/$NAME.img" "$OUT/$NAME.img"  # for images/test.sh; not published
    du -sm "$rootfs"/usr/lib/modules "$rootfs"/opt/camgate-releases "$rootfs"/usr/lib/python3* \
        "$rootfs"/usr/lib/firmware "$rootfs"/usr >"$OUT/$NAME.space.txt" 2>/dev/null || true
    rm -rf "$work"
    log "done in $((SECONDS - started)) s (base $((base_done - started)) s," \
        "app $((app_done - base_done)) s): $OUT/$NAME.img.xz" \
        "($(du -h "$OUT/$NAME.img.xz" | cut -f1))"
}

main "$@"

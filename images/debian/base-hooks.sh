#!/usr/bin/env bash
# mmdebstrap hooks for the Debian twin image (images/debian/build.sh), and the app layer's
# clean-up. Changing this file changes the base system's cache key.
#
#   base-hooks.sh setup     ROOTFS ROOT_LABEL BOOT_LABEL   before packages are installed
#   base-hooks.sh customize ROOTFS ROOT_LABEL BOOT_LABEL   after, still in mmdebstrap
#   base-hooks.sh slim-app  ROOTFS                         after the app layer
set -euo pipefail

step=$1
rootfs=$2

setup() {
    local root_label=$1
    # initramfs-tools would rebuild the initramfs after every package (~36 min under
    # qemu-user): off while installing, built once in customize.
    mkdir -p "$rootfs/etc/initramfs-tools/conf.d" "$rootfs/etc/default"
    echo "update_initramfs=no" >"$rootfs/etc/initramfs-tools/update-initramfs.conf"
    # The root file system is found by label, and ext4 + virtio (QEMU's disks) are in
    # the initramfs; raspi-firmware's hook writes cmdline.txt from ROOTPART.
    # MODULES=list: only the drivers named here go in (MODULES=most copies hundreds, each
    # a string of emulated processes: many minutes under qemu-user).
    printf 'FSTYPE=ext4\nMODULES=list\n' >"$rootfs/etc/initramfs-tools/conf.d/camgate"
    # Root on: SD card, USB, QEMU's virtio disk (the image test). The SD drivers are what
    # the models' device trees ask for (images/pi-boot-check.py proves it per model):
    # Pi 3 / Zero 2 W: brcm,bcm2835-sdhost (bcm2835); Pi 4: brcm,bcm2711-emmc2
    # (sdhci-iproc), powered by a regulator-fixed (fixed) and switched to 1.8 V by a
    # regulator-gpio (gpio-regulator): without those two its probe waits forever.
    printf '%s\n' ext4 crc32c_generic sdhci_iproc bcm2835 fixed gpio-regulator \
        usb_storage uas xhci_pci pcie_brcmstb reset_raspberrypi dwc2 \
        virtio_pci virtio_blk >"$rootfs/etc/initramfs-tools/modules"
    printf 'ROOTPART=LABEL=%s\nCONSOLES="ttyS1,115200 tty0"\n' "$root_label" \
        >"$rootfs/etc/default/raspi-firmware"
    # No docs, man pages or foreign translations: an appliance has no reader for them.
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/camgate-slim" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CFG
}

customize() {
    local root_label=$1 boot_label=$2
    echo camgate >"$rootfs/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tcamgate\n::1\tlocalhost ip6-localhost\n' \
        >"$rootfs/etc/hosts"
    printf 'LABEL=%s\t/\text4\tdefaults,noatime\t0\t1\nLABEL=%s\t/boot/firmware\tvfat\tdefaults,noatime\t0\t2\n' \
        "$root_label" "$boot_label" >"$rootfs/etc/fstab"
    mkdir -p "$rootfs/boot/firmware"
    # Wired (and, from the boot partition's `network` file, Wi-Fi) by DHCP, systemd-networkd.
    mkdir -p "$rootfs/etc/systemd/network"
    printf '[Match]\nName=e* wlan*\n\n[Network]\nDHCP=yes\nMulticastDNS=no\n' \
        >"$rootfs/etc/systemd/network/50-dhcp.network"
    chroot "$rootfs" systemctl enable systemd-networkd.service systemd-resolved.service
    ln -sf /run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
    # SSH stays off until an `ssh` file on the boot partition asks for it (camgate-firstboot).
    chroot "$rootfs" systemctl disable ssh.service
    rm -f "$rootfs"/etc/ssh/ssh_host_*  # each card makes its own keys, before sshd starts
    cat >"$rootfs/etc/systemd/system/ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Make this card's SSH host keys
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
    chroot "$rootfs" systemctl enable ssh-host-keys.service
    # root has no password: nobody logs in as root (console included).
    chroot "$rootfs" passwd --lock root
    # The kernel's own postinst made the initramfs, once (updates were off); make sure
    # raspi-firmware copied kernel and initramfs to the boot partition and wrote cmdline.txt.
    echo "update_initramfs=yes" >"$rootfs/etc/initramfs-tools/update-initramfs.conf"
    local kernel version
    for kernel in "$rootfs"/boot/vmlinuz-*; do
        version=${kernel##*/vmlinuz-}
        [[ -f $rootfs/boot/initrd.img-$version ]] || chroot "$rootfs" update-initramfs -c -k "$version"
        chroot "$rootfs" /etc/kernel/postinst.d/z50-raspi-firmware "$version"
        chroot "$rootfs" /etc/initramfs/post-update.d/z50-raspi-firmware "$version" \
            "/boot/initrd.img-$version"
    done
    slim_modules
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
}

slim_modules() {
    # Kernel drivers a Pi 3/4 (or QEMU's virt board) never loads: GPUs of PCs, InfiniBand,
    # ISDN, laptops' sound, server NICs... ~2/3 of the modules.
    local modules
    for modules in "$rootfs"/usr/lib/modules/*/kernel; do
        rm -rf "$modules"/drivers/{gpu/drm/{amd,radeon,nouveau,i915,xe,msm,tegra,etnaviv,panfrost,lima,rockchip,sun4i,meson,mediatek,exynos,imx,nova,qxl,bochs},infiniband,isdn,scsi/{qla2xxx,lpfc,mpt3sas,megaraid,bfa,qedf,qedi,be2iscsi,csiostor,fnic,aacraid,smartpqi,mpi3mr},net/ethernet/{mellanox,intel,broadcom/bnx2x,chelsio,qlogic,cavium,marvell,huawei,emulex,netronome,sfc,amazon,hisilicon,pensando,fungible},net/wireless/{intel,mediatek,realtek,ath,marvell,ti,quantenna},media/{dvb-frontends,dvb-core,pci,tuners,rc},staging,hwmon/pmbus,iio,fpga,edac,platform/{x86,chrome}}
        rm -rf "$modules"/sound/{pci,isa,firewire,soc/{intel,amd,sof,fsl,mediatek,qcom,rockchip,samsung,sunxi,tegra,ti,codecs}}
    done
    for modules in "$rootfs"/usr/lib/modules/*; do
        [[ -d $modules ]] && chroot "$rootfs" depmod -a "$(basename "$modules")"
    done
}

slim_app() {
    rm -rf "$rootfs/root/.cache" "$rootfs/tmp/"*
}

case $step in
    setup) setup "$3" ;;
    customize) customize "$3" "$4" ;;
    slim-app) slim_app ;;
    *) echo "base-hooks.sh: unknown step $step" >&2; exit 2 ;;
esac

"""The Pi image's first boot and its static boot check (images/). The image build and
its QEMU boots are `make image-test` (docs/raspberry-pi.md): too slow for every run; these
check the parts that run here: the per-model boot check on a device tree compiled with dtc,
and the first-boot hook's SSH key and Wi-Fi handling in a throwaway root."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.rig import prereq

ROOT = Path(__file__).parents[2]
FIRSTBOOT = ROOT / "deploy/raspberrypi/app/camgate-firstboot"
KERNEL = "6.1.0-99-arm64"

# A Pi 4's SD path as its real device tree has it: emmc2 behind a bus, powered by a
# regulator-fixed and switched by a regulator-gpio, both on the firmware's GPIO expander.
PI4_DTS = """/dts-v1/;
/ {
    compatible = "raspberrypi,4-model-b", "brcm,bcm2711";
    #address-cells = <1>; #size-cells = <1>;
    firmware { compatible = "raspberrypi,bcm2835-firmware", "simple-mfd";
        expgpio: gpio { compatible = "raspberrypi,firmware-gpio";
            gpio-controller; #gpio-cells = <2>; };
    };
    sd_io_1v8_reg: sd_io_1v8_reg { compatible = "regulator-gpio"; gpios = <&expgpio 4 0>; };
    sd_vcc_reg: sd_vcc_reg { compatible = "regulator-fixed"; gpio = <&expgpio 6 0>; };
    emmc2bus { compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>;
        mmc@7e340000 { compatible = "brcm,bcm2711-emmc2"; reg = <0x7e340000 0x100>;
            status = "okay";
            vqmmc-supply = <&sd_io_1v8_reg>; vmmc-supply = <&sd_vcc_reg>; };
    };
    soc { compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>;
        mmc@7e300000 { compatible = "brcm,bcm2835-sdhci"; reg = <0x7e300000 0x100>;
            status = "okay"; non-removable; };
        mmc@7e202000 { compatible = "brcm,bcm2835-sdhost"; reg = <0x7e202000 0x100>;
            status = "disabled"; };
    };
};
"""
ALIASES = """alias of:N*T*Cbrcm,bcm2711-emmc2C* sdhci_iproc
alias of:N*T*Cbrcm,bcm2711-emmc2 sdhci_iproc
alias of:N*T*Cbrcm,bcm2835-sdhci sdhci_iproc
alias of:N*T*Cbrcm,bcm2835-sdhost bcm2835
alias of:N*T*Cregulator-fixed fixed
alias of:N*T*Cregulator-gpio gpio_regulator
"""
DEPS = """kernel/drivers/mmc/host/sdhci-iproc.ko: kernel/drivers/mmc/host/sdhci-pltfm.ko \
kernel/drivers/mmc/host/sdhci.ko
kernel/drivers/mmc/host/sdhci-pltfm.ko: kernel/drivers/mmc/host/sdhci.ko
kernel/drivers/mmc/host/sdhci.ko:
kernel/drivers/mmc/host/bcm2835.ko:
kernel/drivers/regulator/fixed.ko:
kernel/drivers/regulator/gpio-regulator.ko:
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
"""
ALL_MODULES = [line.split(":")[0] for line in DEPS.splitlines()]


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pi_boot_check", ROOT / "images/pi_boot_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["pi_boot_check"] = module
    spec.loader.exec_module(module)
    return module


def cpio(names: list[str]) -> bytes:
    """A newc archive of empty files, as initramfs-tools writes them."""
    out = b""
    for name in [*names, "TRAILER!!!"]:
        encoded = name.encode() + b"\0"
        fields = [1, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(encoded), 0]
        header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
        out += header + encoded
        out += b"\0" * (-len(out) % 4)
    return out


def make_card(tmp_path: Path, modules: list[str]) -> tuple[Path, Path]:
    if shutil.which("dtc") is None:
        prereq.missing("dtc is missing (Debian package device-tree-compiler)")
    boot, root = tmp_path / "boot", tmp_path / "root"
    boot.mkdir(parents=True)
    (tmp_path / "pi4.dts").write_text(PI4_DTS)
    subprocess.run(
        [
            "dtc",
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            boot / "bcm2711-rpi-4-b.dtb",
            tmp_path / "pi4.dts",
        ],
        check=True,
    )
    for name in ("start4.elf", "fixup4.dat", f"vmlinuz-{KERNEL}"):
        (boot / name).write_bytes(b"x")
    (boot / "config.txt").write_text(
        f"arm_64bit=1\nenable_uart=1\nupstream_kernel=1\nkernel=vmlinuz-{KERNEL}\n"
        f"# comment\ninitramfs initrd.img-{KERNEL} followkernel\n"
    )
    (boot / "cmdline.txt").write_text("console=ttyS1,115200 root=LABEL=camgate-root rw\n")
    # An uncompressed early archive, then the compressed main one (as Debian's).
    main = cpio(["init", *(f"usr/lib/modules/{KERNEL}/{m}" for m in modules)])
    (boot / f"initrd.img-{KERNEL}").write_bytes(
        cpio(["kernel/x86/microcode"]) + gzip.compress(main)
    )
    modules_dir = root / "usr/lib/modules" / KERNEL
    modules_dir.mkdir(parents=True)
    (modules_dir / "modules.alias").write_text(ALIASES)
    (modules_dir / "modules.dep").write_text(DEPS)
    return boot, root


def run_check(boot: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, ROOT / "images/pi_boot_check.py", "--boot", boot, "--root", root],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_pi4_sd_path_needs_its_regulators(tmp_path: Path) -> None:
    check = load_check()
    boot, root = make_card(tmp_path, ALL_MODULES)
    tree = check.parse_fdt((boot / "bcm2711-rpi-4-b.dtb").read_bytes())
    # Only the card slot: not the Wi-Fi's soldered SDIO, not the disabled sdhost.
    assert [n.path for n in check.sd_card_controllers(tree)] == ["/emmc2bus/mmc@7e340000"]
    index = check.ModuleIndex.parse(ALIASES, DEPS)
    needed, _ = check.required_modules((boot / "bcm2711-rpi-4-b.dtb").read_bytes(), index)
    assert needed == {
        "sdhci_iproc",
        "sdhci_pltfm",
        "sdhci",
        "fixed",
        "gpio_regulator",
        "ext4",
        "jbd2",
    }

    pi4 = [m for m in check.MODELS if m.name == "Pi 4 B"]
    card = check.card_from_dirs(boot, root)
    assert check.check(card, tuple(pi4)) == 0

    # The initramfs the image had before: no regulator drivers, the card never appears.
    without = [m for m in ALL_MODULES if "regulator" not in m]
    boot2, root2 = make_card(tmp_path / "old", without)
    result = run_check(boot2, root2)
    assert result.returncode == 1
    assert "Pi 4 B: initramfs lacks fixed, gpio_regulator" in result.stderr


def test_boot_check_reads_config_txt(tmp_path: Path) -> None:
    boot, root = make_card(tmp_path, ALL_MODULES)
    (boot / "config.txt").write_text(f"kernel=vmlinuz-{KERNEL}\n")
    (boot / "start4.elf").unlink()
    result = run_check(boot, root)
    assert result.returncode == 1
    for problem in (
        "firmware file start4.elf missing",
        "arm_64bit=1 missing",
        "initramfs ? is not",
    ):
        assert f"Pi 4 B: {problem}" in result.stderr or problem in result.stderr, result.stderr
    # Without upstream_kernel=1 the firmware looks for the Raspberry Pi kernel's names.
    assert "Pi 3 B: device tree bcm2710-rpi-3-b.dtb missing" in result.stderr


@pytest.fixture
def card_root(tmp_path: Path) -> tuple[Path, Path, dict[str, str], Path]:
    if os.geteuid() != 0:
        pytest.skip("creates a user in a throwaway root as root")
    root, boot = tmp_path / "root", tmp_path / "boot"
    for folder in (root / "etc/sudoers.d", root / "etc/wpa_supplicant", root / "home", boot):
        folder.mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    calls = tmp_path / "systemctl.log"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    systemctl.chmod(0o755)
    env = {
        **os.environ,
        "CAMGATE_BOOT_DIR": str(boot),
        "CAMGATE_ROOT": str(root),
        "CAMGATE_SYSTEMCTL": str(systemctl),
    }
    return root, boot, env, calls


def firstboot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIRSTBOOT], env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_ssh_keys_from_the_boot_partition_make_an_admin(
    card_root: tuple[Path, Path, dict[str, str], Path],
) -> None:
    root, boot, env, calls = card_root
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTest admin@laptop"
    (boot / "authorized_keys").write_text(f"# my laptop\r\n{key}\r\n")
    result = firstboot(env)
    assert result.returncode == 0, result.stderr
    user = next(
        x for x in (root / "etc/passwd").read_text().splitlines() if x.startswith("camgate-admin:")
    )
    uid = int(user.split(":")[2])
    shadow = next(
        x for x in (root / "etc/shadow").read_text().splitlines() if x.startswith("camgate-admin:")
    )
    assert shadow.split(":")[1] == "*"  # no password: keys only
    keys = root / "home/camgate-admin/.ssh/authorized_keys"
    assert keys.read_text() == key + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and keys.stat().st_uid == uid
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700 and keys.parent.stat().st_uid == uid
    sudoers = root / "etc/sudoers.d/010-camgate-admin"
    assert sudoers.read_text() == "camgate-admin ALL=(ALL) NOPASSWD: ALL\n"
    assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440
    assert "enable ssh.service" in calls.read_text()
    assert "start --no-block ssh.service" in calls.read_text()
    assert not (boot / "authorized_keys").exists()

    # The same key again (a second card set-up): no duplicate, the user is not re-made.
    (boot / "authorized_keys").write_text(key + "\n")
    assert firstboot(env).returncode == 0
    assert keys.read_text() == key + "\n"
    lines = (root / "etc/passwd").read_text().splitlines()
    assert sum(x.startswith("camgate-admin:") for x in lines) == 1

    # Not a key at all: set aside, nothing enabled.
    calls.write_text("")
    (boot / "authorized_keys").write_text("password123\n")
    assert firstboot(env).returncode == 0
    assert (boot / "authorized_keys.rejected").exists() and calls.read_text() == ""


def test_wifi_starts_on_the_first_boot_with_its_country(
    card_root: tuple[Path, Path, dict[str, str], Path],
) -> None:
    root, boot, env, calls = card_root
    (boot / "network").write_text("ssid=Home\npsk=secret words\ncountry= gb\n")
    result = firstboot(env)
    assert result.returncode == 0, result.stderr
    wifi = (root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text()
    assert wifi.startswith("country=GB\n") and 'ssid="Home"' in wifi
    # Started on this boot, not only enabled for the next.
    assert calls.read_text().splitlines() == [
        "enable wpa_supplicant@wlan0.service",
        "start --no-block wpa_supplicant@wlan0.service",
    ]
    regdom = root / "etc/modprobe.d/camgate-wifi-country.conf"
    assert regdom.read_text() == "options cfg80211 ieee80211_regdom=GB\n"

    (boot / "network").write_text("ssid=Cafe\ncountry=Great Britain\n")
    result = firstboot(env)
    assert result.returncode == 0 and "not a two-letter country code" in result.stdout
    assert "country=" not in (root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text()


def test_raspberry_pi_os_config_passes_pi_gens_checks() -> None:
    """pi-gen's own validation of images/raspios/config (CAMGATE_PI_GEN: a pi-gen
    checkout; the full build needs the Raspberry Pi archive, unreachable here)."""
    pi_gen = os.environ.get("CAMGATE_PI_GEN")
    if not pi_gen or os.geteuid() != 0:
        pytest.skip("set CAMGATE_PI_GEN to a pi-gen checkout and run as root")
    result = subprocess.run(
        [ROOT / "images/raspios/check-config.sh", pi_gen],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepts images/raspios/config" in result.stdout

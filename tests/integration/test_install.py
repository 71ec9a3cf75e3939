"""The Raspberry Pi install (deploy/raspberrypi): scripts pass shellcheck, the app layer
installs into a throwaway root and upgrades without touching the user's config, the units
pass `systemd-analyze verify`, uninstall reverses it, and the first-boot hook applies (or
rejects) what a user drops on the boot partition. The image build itself is `make
image-test` (docs/raspberry-pi.md): too slow for every run."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.rig import prereq
from tests.rig.net import free_port, wait_port

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "raspberrypi"
SETUP = DEPLOY / "app" / "setup.sh"
FIRSTBOOT = DEPLOY / "app" / "camgate-firstboot"
SCRIPTS = sorted(
    p
    for folder in (ROOT / "deploy", ROOT / "images")
    for p in folder.rglob("*")
    if p.is_file() and (p.suffix == ".sh" or p.read_bytes().startswith(b"#!/usr/bin/env bash"))
)


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A throwaway root with the host's accounts and systemd units (for verify)."""
    if os.geteuid() != 0:
        pytest.skip("installs into a throwaway root as root")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    if Path("/lib/systemd/system").is_dir():
        shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return root


def test_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        prereq.missing("shellcheck is missing (Debian package shellcheck)")
    assert len(SCRIPTS) >= 4
    result = run("shellcheck", "-x", *SCRIPTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_layer_installs_upgrades_and_uninstalls(target: Path) -> None:
    first = run(SETUP, "--root", target, "--skip-python")
    assert first.returncode == 0, first.stderr
    passwd = (target / "etc/passwd").read_text()
    user = next(line for line in passwd.splitlines() if line.startswith("camgate:"))
    assert user.endswith(":/var/lib/camgate:/usr/sbin/nologin")
    video = next(
        g for g in (target / "etc/group").read_text().splitlines() if g.startswith("video:")
    )
    assert "camgate" in video.split(":")[3].split(",")
    audio = next(
        g for g in (target / "etc/group").read_text().splitlines() if g.startswith("audio:")
    )
    assert "camgate" in audio.split(":")[3].split(",")  # a microphone on the Pi
    unit = target / "etc/systemd/system/camgate.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    config = target / "etc/camgate/camgate.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # may hold camera passwords
    wants = target / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "camgate.service") == "/etc/systemd/system/camgate.service"
    assert (target / "usr/local/sbin/camgate-firstboot").stat().st_mode & 0o111
    assert (target / "usr/local/sbin/camgate-update").stat().st_mode & 0o111
    assert (
        os.readlink(wants / "camgate-update.service")
        == "/etc/systemd/system/camgate-update.service"
    )
    assert (target / "etc/avahi/services/camgate.service").is_file()

    # The shipped default config is valid.
    check = run(sys.executable, "-m", "gateway.cli", "check-config", config)
    assert check.returncode == 0, check.stderr

    # Upgrade: the user's config stays as they left it; nothing is duplicated.
    config.write_text(config.read_text() + "log_level: debug\n")
    again = run(SETUP, "--root", target, "--skip-python")
    assert again.returncode == 0, again.stderr
    assert config.read_text().endswith("log_level: debug\n")
    lines = (target / "etc/passwd").read_text().splitlines()
    assert sum(line.startswith("camgate:") for line in lines) == 1

    if shutil.which("systemd-analyze"):
        stub = target / "opt/camgate/bin/camgate"
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
        verify = run(
            "systemd-analyze",
            "verify",
            f"--root={target}",
            "/etc/systemd/system/camgate.service",
            "/etc/systemd/system/camgate-firstboot.service",
            "/etc/systemd/system/camgate-update.service",
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
    else:
        prereq.missing("systemd-analyze is missing (Debian package systemd)")

    removed = run(DEPLOY / "uninstall.sh", "--root", target)
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not (target / "opt/camgate").exists()
    assert not [
        x for x in (target / "etc/passwd").read_text().splitlines() if x.startswith("camgate:")
    ]
    assert config.exists()  # kept without --purge
    run(SETUP, "--root", target, "--skip-python")
    assert run(DEPLOY / "uninstall.sh", "--root", target, "--purge").returncode == 0
    assert not (target / "etc/camgate").exists()


def test_unit_is_hardened(target: Path) -> None:
    """`systemd-analyze security` scores camgate.service <= 2.0 (it was 3.6), with the limits
    and the device allow list the Pi camera needs."""
    if shutil.which("systemd-analyze") is None:
        prereq.missing("systemd-analyze is missing (Debian package systemd)")
    assert run(SETUP, "--root", target, "--skip-python").returncode == 0
    result = run(
        "systemd-analyze", "security", "--offline=true", f"--root={target}", "camgate.service"
    )
    assert result.returncode == 0, result.stderr
    overall = next(line for line in result.stdout.splitlines() if "Overall exposure" in line)
    score = float(overall.split(":")[1].split()[0])
    assert score <= 2.0, result.stdout
    unit = (DEPLOY / "app" / "camgate.service").read_text().splitlines()
    for setting in (
        "LimitNOFILE=65536",
        "MemoryMax=60%",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-media rw",
        "DeviceAllow=char-dma_heap rw",
        "DeviceAllow=char-alsa rw",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "UMask=0077",
        "SystemCallFilter=@system-service",
    ):
        assert setting in unit, setting
    assert any(line.startswith("TasksMax=") for line in unit)


async def test_camgate_runs_with_proc_as_the_unit_leaves_it(tmp_path: Path) -> None:
    """ProtectProc=invisible and ProcSubset=pid hide all of /proc but the processes: camgate
    still serves, and /metrics still reads its own process. (systemd is not PID 1 here, so the
    unit's mount is made by hand: a mount namespace with procfs mounted the same way.)"""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a mount namespace needs root and unshare")
    port = free_port()
    config = tmp_path / "camgate.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\nauth: false\ncameras: [{{name: demo, source: demo}}]\n"
    )
    script = (
        "mount -t proc -o subset=pid,hidepid=invisible proc /proc"
        " && test ! -e /proc/meminfo && test ! -e /proc/device-tree"
        ' && exec "$@"'
    )
    command = [sys.executable, "-m", "gateway.cli", "--config", str(config),
               "--state-dir", str(tmp_path / "state")]  # fmt: skip
    process = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child=TERM",
            "sh",
            "-c",
            script,
            "sh",
            *command,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            await wait_port(port, timeout=60)
        except TimeoutError:
            process.kill()
            raise AssertionError(process.communicate()[0]) from None
        url = f"http://127.0.0.1:{port}/metrics"
        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=30).read())
        assert process.poll() is None
        values = dict(
            line.split(" ", 1)
            for line in metrics.decode().splitlines()
            if line.startswith("process_")
        )
        assert float(values["process_resident_memory_bytes"]) > 0
        assert float(values["process_open_fds"]) > 0
    finally:
        process.kill()  # unshare ignores SIGTERM; --kill-child passes a SIGTERM to camgate
        process.wait(timeout=30)


@pytest.fixture
def boot(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    boot, etc = tmp_path / "boot", tmp_path / "etc"
    for folder in (boot, etc / "wpa_supplicant", etc / "camgate"):
        folder.mkdir(parents=True)
    calls = tmp_path / "systemctl.log"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    systemctl.chmod(0o755)
    camgate = tmp_path / "camgate"
    camgate.write_text(f'#!/bin/sh\nexec {sys.executable} -m gateway.cli "$@"\n')
    camgate.chmod(0o755)
    env = {
        "CAMGATE_BOOT_DIR": str(boot),
        "CAMGATE_ETC_DIR": str(etc),
        "CAMGATE_BIN": str(camgate),
        "CAMGATE_SYSTEMCTL": str(systemctl),
        "PYTHONPATH": str(ROOT),
    }
    return boot, etc, env


def test_first_boot_applies_a_config_wifi_and_ssh(boot: tuple[Path, Path, dict[str, str]]) -> None:
    part, etc, env = boot
    (part / "camgate.yaml").write_text(
        "cameras: [{name: porch, source: demo}]\nauth: {admin_password: 'chosen at flash'}\n"
    )
    (part / "network").write_text("ssid=Home Net\r\npsk=wifi secret\r\ncountry=GB\r\n")
    (part / "ssh").write_text("")
    result = run(FIRSTBOOT, env=env)
    assert result.returncode == 0, result.stderr
    applied = etc / "camgate" / "camgate.yaml"
    assert "porch" in applied.read_text() and stat.S_IMODE(applied.stat().st_mode) == 0o640
    wifi = (etc / "wpa_supplicant" / "wpa_supplicant-wlan0.conf").read_text()
    assert 'ssid="Home Net"' in wifi and 'psk="wifi secret"' in wifi and "country=GB" in wifi
    # Secrets don't stay on the FAT partition; SSH was switched on.
    assert sorted(p.name for p in part.iterdir()) == []
    calls = (Path(env["CAMGATE_SYSTEMCTL"]).parent / "systemctl.log").read_text()
    assert "enable ssh.service" in calls and "start --no-block ssh.service" in calls


def test_first_boot_rejects_a_bad_config(boot: tuple[Path, Path, dict[str, str]]) -> None:
    part, etc, env = boot
    (etc / "camgate" / "camgate.yaml").write_text("cameras: [{name: old, source: demo}]\n")
    (part / "camgate.yaml").write_text("cameras: [{name: 'bad name', source: demo}]\n")
    (etc / "NetworkManager" / "system-connections").mkdir(parents=True)
    (part / "network").write_text("ssid=Cafe\n")
    result = run(FIRSTBOOT, env=env)
    assert result.returncode == 0, result.stderr
    assert "old" in (etc / "camgate" / "camgate.yaml").read_text()  # untouched
    assert "cameras[0].name" in (part / "camgate.yaml.error").read_text()
    assert (part / "camgate.yaml.rejected").exists()
    keyfile = etc / "NetworkManager/system-connections/camgate-wifi.nmconnection"
    assert "ssid=Cafe" in keyfile.read_text() and "psk" not in keyfile.read_text()
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600


def test_every_recipe_uses_the_one_app_layer() -> None:
    app_layer = "deploy/raspberrypi/app/setup.sh"
    users = {
        "install.sh": (DEPLOY / "install.sh").read_text(),
        "Debian twin": (ROOT / "images/debian/build.sh").read_text(),
        "Raspberry Pi OS stage": (
            ROOT / "images/raspios/stage-camgate/00-camgate/01-run.sh"
        ).read_text(),
    }
    assert "app/setup.sh" in users["install.sh"]
    for name in ("Debian twin", "Raspberry Pi OS stage"):
        assert app_layer in users[name], name
    # One unit file, one default config: nobody keeps a copy of its own.
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    units = [p for p in tracked if p.endswith("/camgate.service") or p == "camgate.service"]
    assert units == ["deploy/raspberrypi/app/camgate.service"]


def test_raspberry_pi_os_recipe_is_complete() -> None:
    stage = ROOT / "images/raspios/stage-camgate"
    config = (ROOT / "images/raspios/config").read_text()
    assert "stage-camgate" in config and "ENABLE_SSH=0" in config
    assert (stage / "EXPORT_IMAGE").is_file() and (stage / "prerun.sh").is_file()
    packages = (stage / "00-camgate/00-packages").read_text().split()
    assert {"python3-picamera2", "python3-venv", "avahi-daemon"} <= set(packages)

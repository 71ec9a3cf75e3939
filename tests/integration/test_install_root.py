"""deploy/raspberrypi/install.sh, setup.sh --root (the image recipes' way) and the update
bundle, run for real in a throwaway Debian 12 root: a minimal bookworm (mmdebstrap, made
once and cached) entered with chroot in a mount namespace of its own.

Real: bash, Debian's python3 and venv, pip, useradd, the scripts themselves. Stubbed:
`apt-get` and `systemctl` (in /usr/local/bin of the root, ahead of PATH) record their calls,
because the root must not reach the network and systemd cannot run in a chroot; an existing
/run/systemd/system makes install.sh take its live-system path. The dependencies' wheels come
from a cached wheelhouse built on the host (PIP_NO_INDEX inside the root); camgate's own
wheel is built from a copy of this checkout inside the root, as on a Pi. Only the two
session fixtures that fill the cache (once per machine) reach the network: Debian's archive
and the package index."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import gateway
from tests.rig import prereq

REPO = Path(__file__).parents[2]
CACHE = Path(os.environ.get("CAMGATE_TEST_CACHE", "/var/cache/camgate-test"))
ROOT_PACKAGES = "python3,python3-venv"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STUB = '#!/bin/sh\necho "{name} $*" >> /var/log/stub-calls\n'


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="session")
def bookworm_tar() -> Path:
    if os.geteuid() != 0:
        pytest.skip("chroot and mount namespaces need root")
    if shutil.which("mmdebstrap") is None:
        prereq.missing("mmdebstrap is missing (Debian package mmdebstrap)")
    key = hashlib.sha256(f"bookworm minbase {ROOT_PACKAGES}".encode()).hexdigest()[:12]
    tar = CACHE / f"bookworm-{key}.tar"
    if not tar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = tar.with_suffix(".partial.tar")
        made = run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={ROOT_PACKAGES}",
                "bookworm",
                str(partial),
                "http://deb.debian.org/debian",
            ]
        )
        assert made.returncode == 0, made.stderr[-3000:]
        partial.rename(tar)
    return tar


@pytest.fixture(scope="session")
def dependency_wheels() -> Path:
    """camgate's dependencies (and its build backend) as wheels, keyed by pyproject.toml."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    wheels = CACHE / f"wheels-{key}"
    if not wheels.is_dir():
        partial = CACHE / f"wheels-{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        built = run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "-w",
                str(partial),
                str(REPO),
                "setuptools>=68",
                "wheel",
            ]
        )
        assert built.returncode == 0, built.stderr[-3000:]
        for own in partial.glob("camgate-*.whl"):
            own.unlink()
        partial.rename(wheels)
    return wheels


def checkout_copy(dest: Path, version: str | None = None) -> Path:
    """The tracked tree of this checkout, optionally claiming another version."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / os.fsdecode(name))
    if version:
        init = dest / "gateway" / "__init__.py"
        text = init.read_text()
        current = text.split('__version__ = "')[1].split('"')[0]
        init.write_text(text.replace(f'"{current}"', f'"{version}"'))
    return dest


class Target:
    """A throwaway Debian 12 root and a way to run commands in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": "/wheelhouse",
        }
        script = f'mount -t proc proc "{self.path}/proc" && exec chroot "{self.path}" "$@"'
        return run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", *args], env=env)

    def version(self) -> str:
        return self.run("/opt/camgate/bin/camgate", "--version").stdout.strip()

    def calls(self) -> list[str]:
        log = self.path / "var/log/stub-calls"
        return log.read_text().splitlines() if log.exists() else []

    def current(self) -> Path:
        """The release /opt/camgate links to, seen from outside the root."""
        link = os.readlink(self.path / "opt/camgate")
        assert link.startswith("/opt/camgate-releases/")
        return self.path / link.lstrip("/")

    def releases(self) -> list[str]:
        return sorted(p.name for p in (self.path / "opt/camgate-releases").iterdir())


@pytest.fixture
def target(tmp_path: Path, bookworm_tar: Path, dependency_wheels: Path) -> Target:
    if shutil.which("unshare") is None:
        prereq.missing("unshare is missing (Debian package util-linux)")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(bookworm_tar) as tar:
        tar.extractall(root, filter="fully_trusted")
    shutil.copytree(dependency_wheels, root / "wheelhouse")
    (root / "run/systemd/system").mkdir(parents=True)  # install.sh: "systemd is running"
    for name in ("apt-get", "systemctl"):
        stub = root / "usr/local/bin" / name
        stub.write_text(STUB.format(name=name))
        stub.chmod(0o755)
    return Target(root)


def install_from(target: Target, checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    inside = Path("/src") / checkout.name
    shutil.copytree(checkout, target.path / inside.relative_to("/"))
    return target.run(str(inside / "deploy/raspberrypi/install.sh"), *args)


def test_install_upgrade_and_a_failed_upgrade(target: Target, tmp_path: Path) -> None:
    # What an install from before releases left: a plain virtualenv directory.
    legacy = target.path / "opt/camgate/bin"
    legacy.mkdir(parents=True)
    (legacy / "camgate").write_text("#!/bin/sh\necho camgate 0.0.1\n")
    first = install_from(target, checkout_copy(tmp_path / "v1"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert target.version() == f"camgate {gateway.__version__}"
    assert len(target.releases()) == 1  # the old directory replaced by the link
    calls = target.calls()
    assert calls[0] == "apt-get update -q"
    assert any(c.startswith("apt-get install") and "python3-venv" in c for c in calls)
    enable = next(c for c in calls if c.startswith("systemctl enable"))
    assert {"camgate.service", "camgate-update.service"} <= set(enable.split())
    assert "systemctl restart camgate.service" in calls  # started on the live system
    wants = target.path / "etc/systemd/system/multi-user.target.wants"
    for unit in ("camgate.service", "camgate-update.service"):
        assert os.readlink(wants / unit) == f"/etc/systemd/system/{unit}"
    # Plain Debian: no picamera2, and install.sh says so.
    assert "python3-picamera2 was not installed" in first.stderr
    assert (target.current() / "share/camgate/README.md").is_file()
    assert (target.current() / "share/camgate/web").is_dir()

    # The user's config and camgate's state, which an upgrade must keep.
    config = target.path / "etc/camgate/camgate.yaml"
    config.write_text(config.read_text() + "log_level: debug\n")
    state = target.path / "var/lib/camgate"
    state.mkdir(parents=True, exist_ok=True)
    (state / "accounts.json").write_text('{"admin": "kept"}')
    before = target.releases()

    newer = install_from(target, checkout_copy(tmp_path / "v2", version="0.1.1"))
    assert newer.returncode == 0, newer.stdout + newer.stderr
    assert target.version() == "camgate 0.1.1"
    assert config.read_text().endswith("log_level: debug\n")
    assert (state / "accounts.json").read_text() == '{"admin": "kept"}'
    after = target.releases()
    assert len(after) == 2 and before[0] in after  # the previous one kept for a rollback

    # A broken wheelhouse: a readable error, a non-zero exit, 0.1.1 still in place. (On
    # Raspberry Pi OS, whose picamera2 apt cannot see here: said why.)
    (target.path / "etc/rpi-issue").write_text("Raspberry Pi reference\n")
    broken = target.path / "broken"
    shutil.copytree(target.path / "wheelhouse", broken)
    (broken / "camgate-0.1.2-py3-none-any.whl").write_bytes(b"PK\x03\x04 truncated")
    failed = target.run("/src/v2/deploy/raspberrypi/install.sh", "--wheels", "/broken")
    assert failed.returncode != 0
    assert "install.sh: error: camgate was not installed" in failed.stderr
    assert "pip could not install camgate 0.1.2" in failed.stderr
    assert target.version() == "camgate 0.1.1"
    assert target.releases() == after  # nothing half-installed left behind
    assert "is archive.raspberrypi.com missing" in failed.stderr

    # apt-get update fails (no network): stopped right there, with the reason.
    (target.path / "usr/local/bin/apt-get").write_text("#!/bin/sh\nexit 100\n")
    offline = target.run("/src/v2/deploy/raspberrypi/install.sh")
    assert offline.returncode != 0
    assert "install.sh: error: apt-get update failed: is the network up" in offline.stderr
    assert target.version() == "camgate 0.1.1"


def make_bundle(checkout: Path, out: Path, wheels: Path) -> Path:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }
    made = run(
        [str(checkout / "deploy/raspberrypi/make-update.sh"), "--native", "--out", str(out)],
        env=env,
    )
    assert made.returncode == 0, made.stderr
    (bundle,) = out.glob("camgate-update-*.tar")
    return bundle


def test_update_bundle_on_the_boot_partition(
    target: Target, tmp_path: Path, dependency_wheels: Path
) -> None:
    # Installed the way the image recipes do: setup.sh --root from outside, offline wheels.
    wheels = tmp_path / "wheels"
    shutil.copytree(dependency_wheels, wheels)
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(dependency_wheels)}
    source = checkout_copy(tmp_path / "source")
    own = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        env=offline,
    )
    assert own.returncode == 0, own.stderr
    setup = REPO / "deploy/raspberrypi/app/setup.sh"
    installed = run([str(setup), "--root", str(target.path), "--wheels", str(wheels)])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert target.version() == f"camgate {gateway.__version__}"
    boot = target.path / "boot/firmware"
    boot.mkdir(parents=True)
    bundle = make_bundle(
        checkout_copy(tmp_path / "v2", version="0.2.0"), tmp_path / "out", dependency_wheels
    )
    assert bundle.name == "camgate-update-0.2.0.tar"
    shutil.copy(bundle, boot)

    applied = target.run("/usr/local/sbin/camgate-update", "--boot")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert target.version() == "camgate 0.2.0"
    assert sorted(p.name for p in boot.iterdir()) == [
        "camgate-update-0.2.0.tar.applied",
        "camgate-update.log",
    ]
    assert "camgate-update-0.2.0.tar: applied: " in (boot / "camgate-update.log").read_text()
    assert "systemctl try-restart --no-block camgate.service" in target.calls()

    # A damaged bundle (one flipped byte inside a wheel): refused, 0.2.0 keeps running.
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (boot / "camgate-update-0.3.0.tar").write_bytes(bytes(data))
    releases = target.releases()
    failed = target.run("/usr/local/sbin/camgate-update", "--boot")
    assert failed.returncode != 0
    assert target.version() == "camgate 0.2.0"
    assert target.releases() == releases
    assert (boot / "camgate-update-0.3.0.tar.failed").exists()
    report = (boot / "camgate-update.log").read_text()
    assert "camgate-update-0.3.0.tar: FAILED, the old version is kept:" in report
    assert "is damaged: checksum mismatch" in report or "not a readable tar archive" in report

    # Not a bundle at all: said so.
    (boot / "camgate-update-0.4.0.tar").write_bytes(b"not a tar file")
    assert target.run("/usr/local/sbin/camgate-update", "--boot").returncode != 0
    assert "not a readable tar archive" in (boot / "camgate-update.log").read_text()
    assert target.version() == "camgate 0.2.0"

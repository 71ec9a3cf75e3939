"""Facts about the machine and software a result was measured with."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bench.procs import REPO_ROOT


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False, cwd=REPO_ROOT
        ).stdout.strip()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _first_line(text: str, skip: int = 0) -> str:
    lines = text.splitlines()[skip:]
    return lines[0] if lines else "?"


def machine_facts() -> dict[str, Any]:
    from gateway import __version__ as camgate_version

    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = bool(_run(["git", "status", "--porcelain", "--", "gateway"]))
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiortc": _version("aiortc"),
        "aioice": _version("aioice"),
        "av": _version("av"),
        "aiohttp": _version("aiohttp"),
        "camgate": camgate_version,
        "git": f"{commit}{' (gateway/ modified)' if dirty else ''}",
        "gstreamer": _first_line(_run(["gst-launch-1.0", "--version"]), skip=1),
        "loadavg_at_start": os.getloadavg()[0],
    }

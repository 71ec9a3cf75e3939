"""Skip (locally) or fail (in CI) when a test's system prerequisites are missing.

scripts/install-deps.sh --test installs them; in CI a skip would hide a broken install.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import NoReturn

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "run `bash scripts/install-deps.sh --test`"


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} ({INSTALL_HINT})", pytrace=False)
    pytest.skip(f"{reason} ({INSTALL_HINT})")


@functools.cache
def gst_element_exists(name: str) -> bool:
    if shutil.which("gst-inspect-1.0") is None:
        return False
    result = subprocess.run(["gst-inspect-1.0", "--exists", name], check=False)
    return result.returncode == 0


@functools.cache
def rtsp_server_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None if it can."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return "python3-gi / gir1.2-gst-rtsp-server-1.0 are not installed"
    for element in ("videotestsrc", "x264enc", "rtph264pay"):
        if not gst_element_exists(element):
            return f"GStreamer element {element} is missing"
    return None


def require_rtsp_server() -> None:
    problem = rtsp_server_problem()
    if problem:
        missing(f"RTSP camera simulator unavailable: {problem}")


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` is not installed")
    return path

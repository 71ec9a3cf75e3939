"""Run the benchmark in a fresh network namespace that holds only `lo`.

Every socket the benchmark and its children open (camera, gateway, receivers, Chromium)
then lives in that namespace: nothing can leave the machine or meet another service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

MARKER = "CAMGATE_BENCH_NETNS"


def in_private_netns() -> bool:
    return os.environ.get(MARKER) == "1"


def reexec_in_netns(module: str = "bench", argv: list[str] | None = None) -> None:
    """Replace this process with `python -m <module> <argv>` under `unshare --net`
    (needs root); no return."""
    if os.geteuid() != 0:
        sys.exit(f"{module}: needs root to create a network namespace (unshare --net)")
    unshare = shutil.which("unshare")
    if unshare is None:
        sys.exit(f"{module}: `unshare` (util-linux) is not installed")
    os.environ[MARKER] = "1"
    args = sys.argv[1:] if argv is None else argv
    os.execv(unshare, [unshare, "--net", "--", sys.executable, "-m", module, *args])


def bring_up_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    links = subprocess.run(
        ["ip", "-o", "link", "show"], check=True, capture_output=True, text=True, timeout=10
    ).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines() if line.strip()]
    if names != ["lo"]:
        sys.exit(f"bench: expected a namespace holding only lo, found {names}")

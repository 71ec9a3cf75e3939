"""Run a test in its own network namespace, holding only a loopback interface.

`ip netns add` makes a named namespace; setns(2) moves the *calling thread* into it.
Sockets, and threads and child processes created afterwards by that thread, live there:
nothing a test starts can reach or be reached from the host's network. Threads that
already existed (e.g. a reused executor pool) stay in the host namespace: enter the
namespace before the test creates any.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"
_counter = itertools.count(1)


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, or no `ip`)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace `fd` refers to (Python 3.11 lacks os.setns)."""
    if _libc().setns(fd, nstype) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def check_available() -> None:
    if os.geteuid() != 0:
        raise NetnsUnavailable("not root: network namespaces need CAP_SYS_ADMIN")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("`ip` (iproute2) is not installed")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class NetNamespace:
    """A namespace the current thread is in; `host_fd` leads back to where it came from."""

    name: str
    host_fd: int
    fd: int

    @contextlib.contextmanager
    def host(self) -> Iterator[None]:
        """Temporarily run the current thread in the host namespace (for isolation checks)."""
        setns(self.host_fd)
        try:
            yield
        finally:
            setns(self.fd)


PREFIX = "camgate-"


def unique_name() -> str:
    return f"{PREFIX}{os.getpid()}-{next(_counter)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces left by test runs that were killed (their pid is gone)."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(NETNS_RUN_DIR):
            pid = name.removeprefix(PREFIX).split("-")[0]
            if name.startswith(PREFIX) and pid.isdigit() and not _pid_alive(int(pid)):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
                removed.append(name)
    return removed


@contextlib.contextmanager
def isolated_namespace(name: str | None = None) -> Iterator[NetNamespace]:
    """Create a namespace with `lo` up, move this thread in, and undo both on exit."""
    check_available()
    name = name or unique_name()
    _ip("netns", "add", name)
    host_fd = fd = -1
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # /proc/self/ns/net is the main thread's namespace; this thread's may differ.
        host_fd = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        fd = os.open(f"{NETNS_RUN_DIR}/{name}", os.O_RDONLY)
        setns(fd)
        try:
            yield NetNamespace(name, host_fd, fd)
        finally:
            setns(host_fd)
    finally:
        for opened in (fd, host_fd):
            if opened >= 0:
                os.close(opened)
        # Processes still inside keep the namespace alive; deleting only drops its name.
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

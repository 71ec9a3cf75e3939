"""Child processes that are always cleaned up: own process group, die with the parent."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"  # has python3-gi for GStreamer; the venv has not
# Measured processes run ahead of whatever else shares the machine (nice -10),
# so background load disturbs CPU accounting and latency less.
BENCH_NICE = -10
# One JSON line can carry every latency sample of a window (16 viewers x 450 frames x 2).
PIPE_LINE_LIMIT = 16 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _cpu_sets() -> tuple[set[int], set[int]]:
    """(the system under test's CPUs, the rig's CPUs): apart when there are two or more,
    so the gateway never competes with its own load generator for a core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[-1]}, set(cpus[:-1])


TARGET_CPUS, RIG_CPUS = _cpu_sets()


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # Runs in the child between fork and exec: SIGKILL it if the benchmark dies.
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if cpus:
            os.sched_setaffinity(0, cpus)
        with contextlib.suppress(OSError):  # not root: keep the default priority
            os.setpriority(os.PRIO_PROCESS, 0, BENCH_NICE)

    return setup


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Child:
    """A running child process in its own process group, stderr (and stdout unless
    piped) logged to a file."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def read_json(self, timeout: float) -> dict[str, Any]:
        """The next JSON line on the child's piped stdout."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
        return json.loads(line)

    async def send_json(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
                break
            except TimeoutError:
                continue
        # The group may hold grandchildren even after the leader exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


async def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    pipe_stdio: bool = False,
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
) -> Child:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if pipe_stdio else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipe_stdio else log,
            stderr=log,
            env=env or child_env(),
            cwd=REPO_ROOT,
            start_new_session=True,
            preexec_fn=_child_setup(cpus),
            limit=PIPE_LINE_LIMIT,
        )
    finally:
        log.close()
    return Child(name, process, log_path)


class Children(contextlib.AbstractAsyncContextManager["Children"]):
    """Every child started through it is stopped on exit, newest first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []

    async def spawn(self, name: str, argv: Sequence[str], **kwargs: Any) -> Child:
        child = await spawn(name, argv, self.log_dir, **kwargs)
        self._children.append(child)
        return child

    async def stop(self, child: Child) -> None:
        await child.stop()
        if child in self._children:
            self._children.remove(child)

    async def __aexit__(self, *exc_info: object) -> None:
        while self._children:
            await self._children.pop().stop()


def venv_python() -> str:
    return sys.executable

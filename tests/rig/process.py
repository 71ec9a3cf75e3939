"""Bounded teardown of the rig's subprocesses and their pipe readers: a test's teardown
must end even when a process ignores SIGTERM or a pipe stays open."""

from __future__ import annotations

import asyncio
import contextlib
import signal

KILL_TIMEOUT_S = 5.0  # after SIGKILL; only a stuck kernel could exceed it


async def stop_process(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; never waits unboundedly."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), KILL_TIMEOUT_S)
    if proc.stdin is not None:
        proc.stdin.close()


async def finish_tasks(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Let tasks (pipe readers) end on their own for up to `timeout`, then cancel them."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

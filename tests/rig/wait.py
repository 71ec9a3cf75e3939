"""Wait for a condition with a deadline: the tests' substitute for sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.02


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Return once `predicate()` is true; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(POLL_S)

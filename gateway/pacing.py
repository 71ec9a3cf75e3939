"""Pacing for the cached GOP sent to a joining viewer.

Sent at once, a GOP is a second or more of video arriving at line rate: an ordinary
receiver's socket buffer (Linux's default is ~200 KB) overflows and the join loses
hundreds of packets. Sent in real time, the viewer would start seconds late. So the
burst goes through a token bucket: faster than real time, slower than line rate, and
shared by every joining viewer of the gateway (eight joins at once must not add up to
eight times the rate on the same network).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# ~6x a 1080p camera's 4 Mbit/s: a 2 s GOP goes out in ~1/3 s, its IDR in tens of ms.
BURST_RATE_BPS = 25_000_000
# Sent before pacing begins: ~40 full packets, well inside a default socket buffer.
BURST_ALLOWANCE_BYTES = 48_000


class BurstPacer:
    """A token bucket in bytes. `delay(n)` reserves n bytes and says how long to wait
    before sending them (reservations queue up: concurrent callers share the rate)."""

    def __init__(
        self,
        rate_bps: float = BURST_RATE_BPS,
        allowance_bytes: int = BURST_ALLOWANCE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_bps <= 0 or allowance_bytes < 0:
            raise ValueError("the pacing rate must be positive")
        self._rate = rate_bps / 8  # bytes per second
        self._allowance = float(allowance_bytes)
        self._clock = clock
        self._tokens = float(allowance_bytes)
        self._updated = clock()

    def delay(self, nbytes: int) -> float:
        now = self._clock()
        self._tokens = min(self._allowance, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= nbytes
        return max(0.0, -self._tokens / self._rate)

    async def take(self, nbytes: int) -> None:
        wait = self.delay(nbytes)
        if wait > 0:
            await asyncio.sleep(wait)


_shared: BurstPacer | None = None


def shared_pacer() -> BurstPacer:
    """The gateway's one pacer for join bursts."""
    global _shared
    if _shared is None:
        _shared = BurstPacer()
    return _shared

"""Make in-process aiortc peers offer 127.0.0.1 as their ICE host candidate.

aioice's get_host_addresses() skips 127.0.0.1, and a test's network namespace has no other
address, so an unpatched aiortc peer there offers no candidate at all. The patch is
process-wide (aioice has no per-connection hook): the gateway under test, running in the
same process, may install its own filter (gateway/webrtc/ice_filter.py); with its
candidates set to 127.0.0.1 both agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import aioice.ice

LOOPBACK = "127.0.0.1"


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


def allow_loopback_candidates() -> Callable[[], None]:
    """Patch for good; returns a function that puts back what was there before."""
    previous = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _loopback_only

    def restore() -> None:
        # Only undo our own patch: the gateway may have installed its filter since.
        if aioice.ice.get_host_addresses is _loopback_only:
            aioice.ice.get_host_addresses = previous

    return restore


_scoped_users = 0
_scoped_restore: Callable[[], None] | None = None


@contextlib.contextmanager
def loopback_candidates() -> Iterator[None]:
    """Patch while gathering only. Reference-counted: overlapping users (several viewers
    starting at once) keep the patch until the last one leaves."""
    global _scoped_users, _scoped_restore
    if _scoped_users == 0:
        _scoped_restore = allow_loopback_candidates()
    _scoped_users += 1
    try:
        yield
    finally:
        _scoped_users -= 1
        if _scoped_users == 0 and _scoped_restore is not None:
            _scoped_restore()
            _scoped_restore = None

"""How many file descriptors this process may still open.

Everything camgate serves costs descriptors (HTTP connections, a viewer's UDP sockets,
camera connections). When the limit (RLIMIT_NOFILE) is near, new HTTP connections and
new viewers are refused with a clear answer, so the descriptors left serve the viewers
already playing and the admin, instead of failing at random inside a library.
"""

from __future__ import annotations

import errno
import os
import resource

# Kept back for what is already running: camera reconnects, log files, the admin.
RESERVE = 64
_FD_DIR = "/proc/self/fd"


def soft_limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def left() -> int | None:
    """Descriptors that may still be opened; None when unknown (no limit, no /proc)."""
    limit = soft_limit()
    if limit is None:
        return None
    try:
        used = len(os.listdir(_FD_DIR))
    except OSError as exc:  # listing takes a descriptor itself
        return 0 if exc.errno in (errno.EMFILE, errno.ENFILE) else None
    return limit - used


def short(reserve: int = RESERVE) -> bool:
    """Fewer than `reserve` descriptors left (unknown counts as not short)."""
    remaining = left()
    return remaining is not None and remaining < reserve

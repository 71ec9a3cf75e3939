"""Repeated warnings and errors, logged once per window with a count.

Under attack or when a resource runs out the same line can come thousands of times a
second ("Too many open files", refused connections): it floods the journal and costs
the CPU the viewers need. A warning or error whose template (logger, level, message
format) was logged less than `window_s` ago is counted instead of logged; the next one
logged after the window says how many were left out. Lines below WARNING pass as they
are.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from typing import Any

DEFAULT_WINDOW_S = 10.0
MAX_TRACKED = 1024  # distinct templates remembered (bounded memory whatever is logged)
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

log = logging.getLogger("camgate")


class RepeatFilter(logging.Filter):
    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        # template -> (when last logged, how many left out since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        skipped = last[1] if last is not None else 0
        self._seen.pop(key, None)  # re-insert: the dict stays in least-recently-logged order
        self._seen[key] = (now, 0)
        if len(self._seen) > MAX_TRACKED:
            del self._seen[next(iter(self._seen))]
        if skipped:
            record.msg = f"{record.getMessage()} (repeated {skipped} times)"
            record.args = None
        return True


def quiet_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of descriptors or buffers, asyncio logs a traceback per failed accept (once a
    second: it pauses accepting, so it does not spin): make that one line, which the
    RepeatFilter then thins out. Everything else goes to the default handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            log.error("%s: %s", context.get("message", "event loop error"), exc.strerror)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)

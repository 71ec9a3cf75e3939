"""How many HTTP connections camgate holds, and for how long.

Each connection is a file descriptor. Without limits, clients that open connections and
never finish a request (slowloris) take every descriptor and the viewer becomes
unreachable. So:
- a connection that has not sent a complete request head within `idle_timeout_s` of
  opening, or of its previous answer, is closed (aiohttp's keep-alive timer does this);
- connections are capped in total and per remote address. A new connection over a cap
  takes the place of the oldest connection that is idle (no request in progress) - first
  among its own address's, then among all - so a flood of half-open connections keeps
  replacing itself while a real request (the admin's, a viewer's) is served at once.
  Only when every connection is busy is the new one refused, with a 503;
- the same happens when file descriptors run short (gateway/fdbudget.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import fdbudget
from gateway.quotas import ConnectionLimits

log = logging.getLogger("camgate.http")

# A request still running after this long (e.g. a body sent a byte at a time) may be
# replaced like an idle connection. No camgate request legitimately takes this long.
STUCK_REQUEST_S = 60.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\n"
    b'Content-Length: 45\r\n\r\n{"error": "too many connections: retry soon"}'
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Connection:
    address: str
    busy_since: float | None = None  # a request is in progress since (monotonic)


class ConnectionGuard:
    """The open connections, oldest first; admits, replaces or refuses new ones."""

    def __init__(
        self,
        limits: ConnectionLimits | None = None,
        fds_short: Callable[[], bool] = fdbudget.short,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or ConnectionLimits()
        self._fds_short = fds_short
        self._clock = clock
        self._open: dict[Any, _Connection] = {}  # insertion order = age
        self.replaced = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: Any, address: str) -> bool:
        """Make room for `conn` (closing an idle one if a limit is reached) or refuse it."""
        same_address = sum(1 for c in self._open.values() if c.address == address)
        if same_address >= self.limits.max_per_address and not self._replace(address):
            return self._refuse(address)
        if len(self._open) >= self.limits.max_connections and not self._replace(None):
            return self._refuse(address)
        if self._fds_short() and not self._replace(None):
            return self._refuse(address)
        self._open[conn] = _Connection(address)
        return True

    def closed(self, conn: Any) -> None:
        self._open.pop(conn, None)

    def request_started(self, conn: Any) -> None:
        entry = self._open.get(conn)
        if entry is not None:
            entry.busy_since = self._clock()

    def request_finished(self, conn: Any) -> None:
        entry = self._open.get(conn)
        if entry is not None:
            entry.busy_since = None

    def _replace(self, address: str | None) -> bool:
        """Close the oldest replaceable connection (of `address`, or any); False: none."""
        stuck = self._clock() - STUCK_REQUEST_S
        for conn, entry in self._open.items():
            if address is not None and entry.address != address:
                continue
            if entry.busy_since is None or entry.busy_since < stuck:
                del self._open[conn]
                self.replaced += 1
                conn.force_close()
                return True
        return False

    def _refuse(self, address: str) -> bool:
        self.refused += 1
        log.warning("too many HTTP connections: refused one from %s", address)
        return False


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, admitted by a ConnectionGuard first."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(self, address):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(REFUSAL)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return  # aiohttp never saw this connection
        self._guard.closed(self)
        super().connection_lost(exc)


def protocol_factory(
    server: web.Server, guard: ConnectionGuard
) -> Callable[[], web.RequestHandler]:
    """For loop.create_server: aiohttp's handler behind `guard`, with its timeouts."""
    loop = asyncio.get_running_loop()

    def make() -> web.RequestHandler:
        return GuardedRequestHandler(
            server,
            guard,
            loop=loop,
            keepalive_timeout=guard.limits.idle_timeout_s,
            access_log=None,
        )

    return make


def busy_tracker(guard: ConnectionGuard) -> Middleware:
    """Middleware: marks a connection busy while a request runs (busy ones stay)."""

    @web.middleware
    async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
        conn = request.protocol
        guard.request_started(conn)
        try:
            return await handler(request)
        finally:
            guard.request_finished(conn)

    return track

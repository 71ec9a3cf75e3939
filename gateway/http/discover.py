"""GET /api/discover?timeout=3[&interface=eth0]: ONVIF devices on the LAN, as JSON records.

A probe is multicast traffic and takes seconds: one runs at a time, and requests arriving
while it runs get its result instead of starting another (a request for other interfaces
waits for it to finish first).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.discovery.probe import DEFAULT_TIMEOUT, DiscoveryError, ProbeResult, probe
from gateway.http.errors import error_response

MAX_TIMEOUT = 10.0
MAX_INTERFACES = 8
ProbeFn = Callable[..., Coroutine[Any, Any, ProbeResult]]


class SharedProbe:
    """At most one probe in flight; concurrent callers with the same interfaces share it."""

    def __init__(self, probe_fn: ProbeFn = probe) -> None:
        self._probe = probe_fn
        self._task: asyncio.Task[ProbeResult] | None = None
        self._key: tuple[str, ...] = ()

    async def run(self, timeout: float, interfaces: Sequence[str]) -> ProbeResult:
        key = tuple(interfaces)
        while self._task is not None and not self._task.done():
            if self._key == key:
                # shield: a client that hangs up must not cancel the others' probe
                return await asyncio.shield(self._task)
            await asyncio.wait([self._task])
        self._key = key
        self._task = asyncio.create_task(self._probe(timeout, list(interfaces) or None))
        self._task.add_done_callback(_consume)
        return await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])


def _consume(task: asyncio.Task[ProbeResult]) -> None:
    """Retrieve the outcome so a probe whose callers all left logs no 'never retrieved'."""
    if not task.cancelled():
        task.exception()


SHARED_PROBE = web.AppKey("shared_probe", SharedProbe)


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return min(value, MAX_TIMEOUT)


@access(Access.ADMIN)
async def discover(request: web.Request) -> web.Response:
    interfaces = request.query.getall("interface", [])
    try:
        timeout = _timeout(request.query.get("timeout"))
        if len(interfaces) > MAX_INTERFACES or any(len(i) > 64 for i in interfaces):
            raise ValueError("too many or too long interface names")
        result = await request.app[SHARED_PROBE].run(timeout, interfaces)
    except (ValueError, DiscoveryError) as exc:
        return error_response(400, str(exc))
    return web.json_response(
        [device.to_json() for device in result.devices], headers={"Cache-Control": "no-store"}
    )


async def _close(app: web.Application) -> None:
    await app[SHARED_PROBE].close()


def add_routes(app: web.Application, probe_fn: ProbeFn = probe) -> None:
    app[SHARED_PROBE] = SharedProbe(probe_fn)
    app.on_cleanup.append(_close)
    app.router.add_get("/api/discover", discover, name="discover")

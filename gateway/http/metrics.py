"""GET /metrics: Prometheus text format; guarded like the API (a viewer token will do)."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.http.keys import HUBS, MQTT_STATE, SESSIONS
from gateway.metrics import GatewayFacts, ProcessFacts, render

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STARTED_AT = time.time()


@access(Access.VIEWER)
async def metrics(request: web.Request) -> web.Response:
    hubs = request.app[HUBS]
    mqtt = request.app.get(MQTT_STATE)
    facts = GatewayFacts(
        cameras=[hub.snapshot() for hub in hubs.values()],
        frames={name: hub.frames_received for name, hub in hubs.items()},
        sessions=len(request.app[SESSIONS]),
        mqtt_connected=mqtt() if mqtt is not None else None,
        process=process_facts(),
    )
    return web.Response(body=render(facts).encode(), headers={"Content-Type": CONTENT_TYPE})


def process_facts() -> ProcessFacts:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcessFacts(
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        resident_bytes=_resident_bytes(),
        open_fds=_open_fds(),
        start_time_seconds=STARTED_AT,
    )


def _resident_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics, name="metrics")

"""GET /metrics: Prometheus text format; guarded like the API (a viewer token will do)."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.fanout.pool import SendWorkerPool
from gateway.http.keys import HUBS, MQTT_STATE, SESSIONS
from gateway.metrics import GatewayFacts, ProcessFacts, SendWorkerFacts, render

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
        send_workers=send_worker_facts(request.app[SESSIONS].send_workers),
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


def send_worker_facts(pool: SendWorkerPool | None) -> list[SendWorkerFacts]:
    if pool is None:
        return []
    return [
        SendWorkerFacts(
            index=index,
            up=pid is not None,
            viewers=viewers,
            cpu_seconds=_cpu_seconds(pid) if pid is not None else None,
            resident_bytes=_resident_bytes(str(pid)) if pid is not None else None,
        )
        for index, pid, viewers in pool.workers()
    ]


def _cpu_seconds(pid: int) -> float | None:
    try:
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _resident_bytes(pid: str = "self") -> int | None:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
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

"""GET /metrics: Prometheus text format; guarded like the API (a viewer token will do).

Each application has its own CollectorRegistry (never prometheus-client's global one:
tests run many gateways in one process); its collectors read the application's hubs,
sessions and MQTT state at scrape time."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from gateway.auth.roles import Access, access
from gateway.fanout.pool import SendWorkerPool
from gateway.http.keys import HUBS, MQTT_STATE, SESSIONS
from gateway.metrics import CameraCollector, GatewayCollector, SendWorkerCollector, SendWorkerFacts
from gateway.process_figures import ProcessCollector, cpu_seconds, resident_bytes

# The text format camgate has always served (prometheus-client's newest is 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


@access(Access.VIEWER)
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def gateway_registry(app: web.Application) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(CameraCollector(lambda: [hub.status() for hub in app[HUBS].values()]))
    registry.register(GatewayCollector(lambda: len(app[SESSIONS]), lambda: _mqtt_connected(app)))
    registry.register(SendWorkerCollector(lambda: send_worker_facts(app[SESSIONS].send_workers)))
    registry.register(ProcessCollector())
    return registry


def _mqtt_connected(app: web.Application) -> bool | None:
    """None when MQTT is not configured (then there is no such series)."""
    state = app.get(MQTT_STATE)
    return state() if state is not None else None


def send_worker_facts(pool: SendWorkerPool | None) -> list[SendWorkerFacts]:
    if pool is None:
        return []
    return [
        SendWorkerFacts(
            index=w.index,
            up=w.pid is not None,
            viewers=w.viewers,
            skipped_frames=w.skipped_frames,
            cpu_seconds=cpu_seconds(w.pid) if w.pid is not None else None,
            resident_bytes=resident_bytes(w.pid) if w.pid is not None else None,
        )
        for w in pool.workers()
    ]


def add_routes(app: web.Application) -> None:
    app[REGISTRY] = gateway_registry(app)
    app.router.add_get("/metrics", metrics, name="metrics")

"""The JSON API: health and cameras. Nothing here ever returns a credential."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.auth.roles import Access, access
from gateway.http.auth import identity_of
from gateway.http.errors import error_response
from gateway.http.keys import HUBS, PTZ_BACKENDS, SESSIONS, STARTED
from gateway.hub import CameraHub


def camera_json(request: web.Request, hub: CameraHub) -> dict[str, Any]:
    data = hub.status().to_json()
    data["whep_url"] = str(request.app.router["whep"].url_for(camera=hub.name))
    # A viewer account can't steer: no pad in its viewer.
    data["ptz"] = ptz_json(request.app, hub.name) if identity_of(request).can_steer else None
    return data


def ptz_json(app: web.Application, camera: str) -> dict[str, Any] | None:
    """The camera's PTZ capabilities, or None (no pad in the viewer) when it has no PTZ,
    has no `onvif:` block, or has not told us yet (it is retried on the next command)."""
    backend = app.get(PTZ_BACKENDS, {}).get(camera)
    if backend is None or not backend.capabilities.any:
        return None
    return backend.capabilities.to_json()


@access(Access.PUBLIC)
async def health(request: web.Request) -> web.Response:
    hubs: dict[str, CameraHub] = request.app[HUBS]
    # Which send path viewers get and which library internals were missing (gateway/compat/).
    libraries = await request.app[SESSIONS].check_libraries()
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.monotonic() - request.app[STARTED], 1),
            "cameras": len(hubs),
            "cameras_live": sum(1 for h in hubs.values() if h.state == "live"),
            "sessions": len(request.app[SESSIONS]),
            "send_path": libraries.send_path,
            "missing_internals": list(libraries.missing),
        }
    )


@access(Access.VIEWER)
async def list_cameras(request: web.Request) -> web.Response:
    hubs: dict[str, CameraHub] = request.app[HUBS]
    return web.json_response([camera_json(request, h) for h in hubs.values()])


@access(Access.VIEWER)
async def get_camera(request: web.Request) -> web.Response:
    hub = request.app[HUBS].get(request.match_info["camera"])
    if hub is None:
        return error_response(404, "unknown camera")
    hub.wake()  # someone asks about this camera: a retry backoff is cut short
    return web.json_response(camera_json(request, hub))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health, name="health")
    app.router.add_get("/api/cameras", list_cameras, name="cameras")
    app.router.add_get("/api/cameras/{camera}", get_camera, name="camera")

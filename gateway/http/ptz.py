"""PTZ over HTTP, for scripts (docs/ptz.md): the data channel's commands and replies.

POST /api/cameras/{camera}/ptz   application/json command -> 200 reply, or an error status
GET  /api/cameras/{camera}/ptz   -> capabilities and presets

No CORS headers on purpose: together with the JSON content type that keeps web pages from
other origins from moving the camera through a visitor's browser.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.http.keys import HUBS, PTZ_CONTROLLERS
from gateway.ptz.commands import (
    MAX_MESSAGE_BYTES,
    CommandError,
    ListPresets,
    Move,
    error_reply,
    parse_command,
)
from gateway.ptz.controller import ErrorKind, PtzController

# A script's move without `duration` lasts this long: an HTTP client can't hold a button,
# and one that dies must not leave the camera turning.
HTTP_MOVE_DURATION_S = 1.0
OWNER = "http"
JSON = "application/json"
STATUS = {
    ErrorKind.REJECTED: 422,
    ErrorKind.BUSY: 409,
    ErrorKind.CAMERA: 502,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.CLOSED: 503,
    ErrorKind.NO_PTZ: 404,
}
NO_PTZ = "this camera has no PTZ"


def _error(status: int, message: str, id: Any = None) -> web.Response:
    return web.json_response(error_reply(id, message), status=status)


def _controller(request: web.Request) -> PtzController:
    name = request.match_info["camera"]
    if name not in request.app[HUBS]:
        raise web.HTTPNotFound(text='{"error": "unknown camera"}', content_type="application/json")
    controller = request.app.get(PTZ_CONTROLLERS, {}).get(name)
    if controller is None or _known_without_ptz(controller):
        raise web.HTTPNotFound(text=f'{{"error": "{NO_PTZ}"}}', content_type="application/json")
    return controller


def _known_without_ptz(controller: PtzController) -> bool:
    """The camera has told us it has no PTZ (rather than not having been reached yet)."""
    backend = controller.backend
    return not backend.capabilities.any and bool(getattr(backend, "loaded", True))


async def _read_body(request: web.Request) -> bytes:
    if request.content_type != JSON:
        raise web.HTTPUnsupportedMediaType(
            text=f'{{"error": "Content-Type must be {JSON}"}}', content_type="application/json"
        )
    if request.content_length is not None and request.content_length > MAX_MESSAGE_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_MESSAGE_BYTES, actual_size=request.content_length
        )
    body = await request.content.read(MAX_MESSAGE_BYTES + 1)
    if len(body) > MAX_MESSAGE_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_MESSAGE_BYTES, actual_size=len(body))
    return body


@access(Access.ADMIN)
async def command(request: web.Request) -> web.Response:
    received_at = time.monotonic()
    controller = _controller(request)
    body = await _read_body(request)
    try:
        id, cmd = parse_command(body)
    except CommandError as exc:
        return _error(400, exc.message, exc.id)
    if isinstance(cmd, Move) and cmd.duration is None and not cmd.still:
        cmd = dataclasses.replace(cmd, duration=HTTP_MOVE_DURATION_S)
    outcome = await controller.submit(cmd, OWNER, received_at=received_at)
    if outcome.ok:
        return web.json_response(outcome.reply(id))
    if _known_without_ptz(controller):
        return _error(404, NO_PTZ, id)
    assert outcome.kind is not None
    return web.json_response(outcome.reply(id), status=STATUS[outcome.kind])


@access(Access.VIEWER)
async def describe(request: web.Request) -> web.Response:
    controller = _controller(request)
    presets: list[dict[str, str]] = []
    caps = controller.backend.capabilities
    if caps.presets or not caps.any:  # unknown capabilities: this call learns them
        outcome = await controller.submit(ListPresets(), OWNER)
        caps = controller.backend.capabilities
        if _known_without_ptz(controller):
            return _error(404, NO_PTZ)
        if outcome.ok:
            presets = outcome.extra["presets"]
        elif not caps.any or caps.presets:
            assert outcome.kind is not None
            return _error(STATUS[outcome.kind], outcome.error or "PTZ error")
    return web.json_response(
        {
            "camera": request.match_info["camera"],
            "capabilities": caps.to_json(),
            "presets": presets,
            "deadman_s": controller.deadman_s,
            "max_move_s": controller.max_move_s,
            "http_move_duration_s": HTTP_MOVE_DURATION_S,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/cameras/{camera}/ptz", command, name="ptz")
    app.router.add_get("/api/cameras/{camera}/ptz", describe)

"""The aiohttp application: routes, limits and error handling."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.auth.service import Authenticator
from gateway.config import AuthConfig
from gateway.http import api, auth, discover, metrics, ptz, snapshot, static, whep
from gateway.http.errors import error_response
from gateway.http.keys import AUTH, HUBS, SESSIONS, SNAPSHOTTERS, STARTED, WEB_ROOT
from gateway.hub import CameraHub
from gateway.snapshot import Snapshotter
from gateway.webrtc.session import WhepSessions

log = logging.getLogger("camgate.http")

MAX_BODY_BYTES = 256 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors as JSON; an unexpected exception is a 500 and a log line, never a crash."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.content_type == "application/json":
            raise
        if exc.status == 413:
            return error_response(413, "request body too large")
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception:
        # The path is the client's: escaped, so it can't forge log lines or carry a NUL.
        path = request.path[:200].encode("unicode_escape").decode("ascii")
        log.exception("unhandled error on %s %s", request.method, path)
        return error_response(500, "internal error")


def make_app(
    hubs: dict[str, CameraHub],
    sessions: WhepSessions,
    web_root: Path | None = None,
    snapshotters: dict[str, Snapshotter] | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    """The application; without an `authenticator` every caller is let in (tests)."""
    app = web.Application(middlewares=[json_errors, auth.guard], client_max_size=MAX_BODY_BYTES)
    app[AUTH] = authenticator or Authenticator(AuthConfig(enabled=False), Path("/nonexistent"))
    app[HUBS] = hubs
    app[SESSIONS] = sessions
    if snapshotters is None:
        snapshotters = {name: Snapshotter(hub) for name, hub in hubs.items()}
    app[SNAPSHOTTERS] = snapshotters
    app[STARTED] = time.monotonic()
    app[WEB_ROOT] = web_root or static.find_web_root()
    auth.add_routes(app)
    api.add_routes(app)
    whep.add_routes(app)
    ptz.add_routes(app)
    snapshot.add_routes(app)
    discover.add_routes(app)
    metrics.add_routes(app)
    static.add_routes(app)
    return app

"""GET /api/cameras/{camera}/snapshot.jpg: the camera's latest keyframe as a JPEG."""

from __future__ import annotations

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.http.errors import error_response
from gateway.http.keys import SNAPSHOTTERS
from gateway.snapshot import SnapshotError


@access(Access.VIEWER)
async def snapshot_jpeg(request: web.Request) -> web.StreamResponse:
    snapshotter = request.app[SNAPSHOTTERS].get(request.match_info["camera"])
    if snapshotter is None:
        return error_response(404, "unknown camera")
    try:
        # ?cached=1: the newest picture at hand, however old (a poster), without waiting
        cached = request.query.get("cached") == "1"
        snapshot = await (snapshotter.latest() if cached else snapshotter.take())
    except SnapshotError as exc:
        return error_response(503, str(exc), **{"Retry-After": "5"})
    return web.Response(
        body=snapshot.jpeg,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cameras/{camera}/snapshot.jpg", snapshot_jpeg, name="snapshot")

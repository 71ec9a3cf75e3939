"""The browser viewer: files from web/, with headers an appliance should send."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aiohttp import web

from gateway.auth.roles import Access, access
from gateway.http.keys import WEB_ROOT

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def find_web_root() -> Path:
    """web/ beside the package in a source checkout, else where the wheel installed it."""
    candidates = [
        os.environ.get("CAMGATE_WEB_ROOT"),
        Path(__file__).resolve().parents[2] / "web",
        Path(sys.prefix) / "share" / "camgate" / "web",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "index.html").is_file():
            return Path(candidate)
    raise FileNotFoundError("the viewer (web/index.html) is not installed")


@access(Access.VIEWER)
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "index.html", headers=SECURITY_HEADERS)


@access(Access.VIEWER)
async def asset(request: web.Request) -> web.FileResponse:
    root: Path = request.app[WEB_ROOT]
    name = request.match_info["path"]
    if not name.isprintable():  # e.g. a NUL (/app.js%00.html): no file has one
        raise web.HTTPNotFound()
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=SECURITY_HEADERS)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index, name="index")
    app.router.add_get("/{path:(?!api/).+}", asset, name="asset")

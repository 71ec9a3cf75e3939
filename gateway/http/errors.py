"""JSON error replies, one shape everywhere: {"error": "<message>"}."""

from __future__ import annotations

from aiohttp import web


def error_response(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)

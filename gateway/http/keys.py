"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.hub import CameraHub
from gateway.webrtc.session import WhepSessions

HUBS = web.AppKey("hubs", dict[str, CameraHub])
SESSIONS = web.AppKey("sessions", WhepSessions)
STARTED = web.AppKey("started", float)
WEB_ROOT = web.AppKey("web_root", Path)

"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from gateway.auth.service import Authenticator
from gateway.hub import CameraHub
from gateway.ptz.backend import PtzBackend
from gateway.ptz.controller import PtzController
from gateway.snapshot import Snapshotter
from gateway.webrtc.session import WhepSessions

HUBS = web.AppKey("hubs", dict[str, CameraHub])
SESSIONS = web.AppKey("sessions", WhepSessions)
STARTED = web.AppKey("started", float)
WEB_ROOT = web.AppKey("web_root", Path)
# PTZ backends by camera name; only cameras with an `onvif:` block have one.
PTZ_BACKENDS = web.AppKey("ptz_backends", dict[str, PtzBackend])
# One PtzController per camera with a backend: every PTZ command goes through it.
PTZ_CONTROLLERS = web.AppKey("ptz_controllers", dict[str, PtzController])
# One per camera: JPEG snapshots of the latest keyframe (HTTP and MQTT share them).
SNAPSHOTTERS = web.AppKey("snapshotters", dict[str, Snapshotter])
# Who the callers are and what they may do (every route is guarded).
AUTH = web.AppKey("auth", Authenticator)
# "Is MQTT connected?" when MQTT is configured (for /metrics).
MQTT_STATE: web.AppKey[Callable[[], bool]] = web.AppKey("mqtt_state")

"""A CameraStatus with plausible values, for tests of its readers (API, MQTT, metrics)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.camera_status import CameraState, CameraStatus, StreamStatus

LIVE = CameraStatus(
    name="front",
    state=CameraState.LIVE,
    error=None,
    warning=None,
    codec="H264",
    profile="High",
    profile_level_id="640028",
    level="4.0",
    width=1920,
    height=1080,
    fps=29.97,
    bitrate_kbps=4012.4,
    gop_frames=60,
    viewers=2,
    dropped_frames=3,
    reconnects=1,
    limit_drops=0,
    discontinuities=0,
    source="rtsp://cam.local/stream",
    frames_received=900,
    streams=(
        StreamStatus("main", 1920, 1080, 29.97, 4012.4, "High", CameraState.LIVE),
        StreamStatus("sub", 640, 360, 0.0, 0.0, None, CameraState.IDLE),
    ),
    switches={"view": 4, "unavailable": 1},
)


def camera_status(**changes: Any) -> CameraStatus:
    return dataclasses.replace(LIVE, **changes)

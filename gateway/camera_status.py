"""What a camera is doing right now: one typed record (CameraHub.status()) that the API,
MQTT and /metrics each read. Never holds a credential."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class CameraState(StrEnum):
    IDLE = "idle"  # on-demand camera with no viewers: not connected, by design
    CONNECTING = "connecting"
    LIVE = "live"
    # Was live and has failed fewer than hub.OFFLINE_AFTER_FAILURES times in a row since.
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"  # why: CameraStatus.error (there is no separate error state)


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One of the camera's streams: "main", and "sub" where it has a second one."""

    name: str
    width: int | None
    height: int | None
    fps: float  # 0 unless live
    bitrate_kbps: float  # 0 unless live
    profile: str | None  # the H.264 profile, None until the first SPS
    state: CameraState  # each stream connects only while someone watches it

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"state": self.state.value}


@dataclass(frozen=True, slots=True)
class CameraStatus:
    name: str
    state: CameraState
    error: str | None  # why the last attempt failed; None while live
    warning: str | None  # something the camera's owner should change (B-frames)
    codec: str
    profile: str | None  # None until the first SPS
    profile_level_id: str | None
    level: str | None
    width: int | None
    height: int | None
    fps: float  # 0 unless live
    bitrate_kbps: float  # 0 unless live
    gop_frames: int  # pictures cached for the next viewer to start with
    viewers: int
    dropped_frames: int  # for viewers that fell behind, those who left included
    reconnects: int
    limit_drops: int  # data dropped for exceeding a cap (picture, GOP)
    discontinuities: int  # times the stream broke while live
    source: str  # the source's description: a URL without user and password
    # The camera's sound as it sends it (None: no audio, or `audio: off`), what listeners
    # get ("OPUS" for transcoded AAC), and why it is not passed on when it isn't.
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_output: str | None = None
    audio_refused: str | None = None
    listeners: int = 0  # viewers receiving the camera's audio
    # An admin may talk to it (an ONVIF audio backchannel), and in which codec.
    talk: bool = False
    talk_codec: str | None = None
    # The camera's streams (main, and sub where it has one): docs/streams.md.
    streams: tuple[StreamStatus, ...] = ()
    frames_received: int = field(default=0, metadata={"api": False})  # /metrics only
    # Viewers' switches between main and sub, by reason.
    switches: dict[str, int] = field(default_factory=dict, metadata={"api": False})

    def to_json(self) -> dict[str, Any]:
        """The camera object of /api/cameras (the viewer reads it), before the HTTP layer
        adds `whep_url` and `ptz`."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("api", True)
        } | {"state": self.state.value, "streams": [s.to_json() for s in self.streams]}

"""What every camera source is: something that produces AccessUnits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket


class SourceError(Exception):
    """The camera is unreachable or its stream failed. The message is safe to show
    users and to log: it never contains a credential."""


class NoSubstreamError(SourceError):
    """The camera turned out to have no second stream (an ONVIF camera with one H.264
    profile): it then reports its main stream only."""

    def __init__(self) -> None:
        super().__init__("the camera offers no second H.264 stream")


class SourceLimitError(SourceError):
    """The camera sent more than a cap allows (gateway.media.limits): the data was
    dropped and the connection is given up, which returns its memory."""


class Source(Protocol):
    description: str  # safe for logs and the API: never a credential
    sdp_parameter_sets: list[bytes]  # SPS/PPS known out of band (RTSP sprop-parameter-sets)

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        """Connect, then call emit() for every whole picture, in order, until cancelled.
        Raises SourceError when the camera is unreachable or the stream ends."""
        ...

    def request_keyframe(self) -> bool:
        """Ask for an IDR now; False if this source cannot make one."""
        ...


@runtime_checkable
class AudioCapable(Protocol):
    """A source that may carry the camera's sound besides its pictures.

    The hub calls attach_audio() before run(); the source then calls `emit_audio` for
    every audio packet, in order, on the event loop. `audio_format` is the camera's
    audio as received (set before its first packet, None when the stream has none);
    `audio_refused` says why the camera's audio is not passed on (a codec camgate can't
    send, e.g. "G726-32 8000 Hz: not supported"), None otherwise. Video never depends
    on audio: a broken audio track is dropped with a log line and the pictures go on.
    """

    audio_format: AudioFormat | None
    audio_refused: str | None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None: ...


@runtime_checkable
class ListenerAware(Protocol):
    """An AudioCapable source whose sound costs something to make while nobody hears it
    (the Pi camera's microphone): the hub's audio fan-out says whether anyone listens,
    after attach_audio() and whenever that changes."""

    def audio_listening(self, listening: bool) -> None: ...

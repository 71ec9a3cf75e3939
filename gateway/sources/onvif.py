"""An ONVIF camera as a video Source: ask the camera for its RTSP URL, then stream it.

The URL is asked for again on every (re)connect: cameras may change ports or paths after a
reboot or a settings change, and some hand out URLs that are valid for one session only.
The camera's ONVIF session (gateway/onvif/session.py) is shared with its PTZ; the
`onvif-zeep-async` library is imported on first connect only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.limits import StreamLimits
from gateway.onvif.settings import OnvifConfig
from gateway.sources.base import NoSubstreamError, SourceError
from gateway.sources.registry import CameraKind, SourceSetup, register
from gateway.sources.rtsp import RtspSource

if TYPE_CHECKING:
    from gateway.config import CameraConfig
    from gateway.onvif.session import OnvifSession


class OnvifSource:
    def __init__(
        self,
        session: OnvifSession,
        transport: Literal["tcp", "udp"] = "tcp",
        *,
        on_resolved: Callable[[str], None] | None = None,
        limits: StreamLimits | None = None,
        substream: str | None = None,
    ) -> None:
        self.session = session
        # None: the main stream; else the second stream's setting ("auto" or a profile).
        self.substream = substream
        self.limits = limits
        self.transport = transport
        self.on_resolved = on_resolved  # gets the redacted RTSP URL once known
        profile = session.config.profile if substream is None else substream
        # Safe for logs and the API; becomes the redacted RTSP URL once resolved.
        self.description = session.description + (f" ({profile})" if profile else "")
        self._rtsp: RtspSource | None = None
        # Shared with the RtspSource, which fills it in place after DESCRIBE.
        self.sdp_parameter_sets: list[bytes] = []
        self._emit_audio: Callable[[AudioPacket], None] | None = None

    # AudioCapable: the camera's audio comes through its RTSP stream.
    @property
    def audio_format(self) -> AudioFormat | None:
        return self._rtsp.audio_format if self._rtsp else None

    @property
    def audio_refused(self) -> str | None:
        return self._rtsp.audio_refused if self._rtsp else None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self._emit_audio = emit_audio

    def request_keyframe(self) -> bool:
        return self._rtsp.request_keyframe() if self._rtsp else False

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        from gateway.onvif.session import OnvifError

        try:
            if self.substream is None:
                profile = await self.session.select_profile()
            else:
                found = await self.session.select_substream(self.substream)
                if found is None:
                    raise NoSubstreamError
                profile = found
            uri = await self.session.stream_uri(profile)
        except OnvifError as exc:
            raise SourceError(str(exc)) from None
        self.description = uri.public
        if self.on_resolved is not None:
            self.on_resolved(uri.public)
        self._rtsp = RtspSource(uri.url, transport=self.transport, limits=self.limits)
        self._rtsp.sdp_parameter_sets = self.sdp_parameter_sets
        if self._emit_audio is not None:
            self._rtsp.attach_audio(self._emit_audio)
        await self._rtsp.run(emit)


def _build(setup: SourceSetup) -> OnvifSource:
    assert setup.onvif is not None, "an onvif camera needs its OnvifSession"
    return OnvifSource(
        setup.onvif, setup.camera.transport, on_resolved=setup.on_resolved, limits=setup.limits
    )


def _build_substream(setup: SourceSetup) -> OnvifSource | None:
    assert setup.onvif is not None, "an onvif camera needs its OnvifSession"
    settings: OnvifConfig = ONVIF.settings_of(setup.camera)
    if settings.substream == "off":
        return None
    return OnvifSource(
        setup.onvif,
        setup.camera.transport,
        on_resolved=setup.on_resolved,
        limits=setup.limits,
        substream=settings.substream,
    )


def _describe(camera: CameraConfig) -> str:
    settings: OnvifConfig = ONVIF.settings_of(camera)
    profile = f" ({settings.profile})" if settings.profile else ""
    return f"onvif://{settings.address}{profile}"


ONVIF = register(
    CameraKind(
        name="onvif",
        model="ONVIF camera",
        settings=OnvifConfig,
        build=_build,
        build_substream=_build_substream,
        describe=_describe,
        block_alone=True,  # no `source`: the camera tells its RTSP URL (GetStreamUri)
    )
)

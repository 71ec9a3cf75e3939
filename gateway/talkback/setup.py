"""Which cameras may talk back, and where each one's RTSP URL comes from: an RTSP
camera's `source`, an ONVIF camera's stream URI (asked afresh, like its video)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.talkback.backchannel import TalkError
from gateway.talkback.camera import CameraTalk, Locate

if TYPE_CHECKING:
    from gateway.config import CameraConfig
    from gateway.onvif.session import OnvifSession

log = logging.getLogger("camgate.talk")


def camera_talk(camera: CameraConfig, onvif: OnvifSession | None) -> CameraTalk:
    if camera.backchannel == "off":
        return CameraTalk(camera.name, None)
    locate = _locator(camera, onvif)
    if locate is None:
        return CameraTalk(camera.name, None, off_reason="this camera has no audio backchannel")
    return CameraTalk(camera.name, locate)


def _locator(camera: CameraConfig, onvif: OnvifSession | None) -> Locate | None:
    if camera.kind == "rtsp" and camera.source:
        source = camera.source

        async def fixed() -> str:
            return source

        return fixed
    if camera.kind == "onvif" and onvif is not None:
        session = onvif

        async def from_onvif() -> str:
            from gateway.onvif.session import OnvifError

            try:
                return (await session.stream_uri(await session.select_profile())).url
            except OnvifError as exc:
                raise TalkError(str(exc)) from None

        return from_onvif
    return None

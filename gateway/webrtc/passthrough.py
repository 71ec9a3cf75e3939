"""Send pre-encoded H.264 through aiortc without encoding, packetizing once per frame.

aiortc's RTCRtpSender was written around an encoder: it asks its track for a frame,
packetizes it per viewer, and answers a viewer's PLI/FIR by flagging its encoder,
which pre-encoded video doesn't have. Two small hooks on each sender instance fix that:
- the next frame comes from our Subscription, already split into RTP payloads (cached
  on the AccessUnit, so N viewers cost one packetization);
- a keyframe request goes to the camera hub, which asks the source where it can.

These are aiortc internals (`_next_encoded_frame`, `_send_keyframe`), so the aiortc
version range is pinned in pyproject.toml and tests/unit/test_passthrough.py fails if
their shape changes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpsender import RTCEncodedFrame

from gateway.media.accessunit import AccessUnit
from gateway.subscription import OutputFrame, Subscription, SubscriptionClosed
from gateway.webrtc.fastsend import FastSender, fast_send_supported

if TYPE_CHECKING:
    from gateway.fanout.pool import SendWorkerPool

log = logging.getLogger("camgate.webrtc")

_PAYLOAD_CACHE_KEY = "rtp-h264-payloads"


def rtp_payloads(unit: AccessUnit) -> list[bytes]:
    """RFC 6184 payloads (STAP-A/FU-A, packetization-mode 1) for one picture, computed once."""
    cached = unit.cache.get(_PAYLOAD_CACHE_KEY)
    if cached is None:
        cached = H264Encoder._packetize(unit.nals)
        unit.cache[_PAYLOAD_CACHE_KEY] = cached
    return cached  # type: ignore[return-value]


class PassthroughTrack(MediaStreamTrack):
    """A video track whose frames are a camera's own H.264 pictures."""

    kind = "video"

    def __init__(self, subscription: Subscription) -> None:
        super().__init__()
        self.subscription = subscription

    async def recv(self) -> OutputFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self.subscription.get()
        except SubscriptionClosed:
            self.stop()
            raise MediaStreamError from None

    def stop(self) -> None:
        self.subscription.close()
        super().stop()


def attach_passthrough(
    sender: RTCRtpSender,
    on_keyframe_request: Callable[[], None],
    workers: SendWorkerPool | None = None,
) -> FastSender | None:
    """Make `sender` send its PassthroughTrack's pictures as they are; the FastSender
    running its send loop (sending through `workers` when given), or None where aiortc's
    own loop had to be kept."""

    async def next_encoded_frame(_codec: Any) -> RTCEncodedFrame | None:
        track = sender.track
        if track is None:
            await asyncio.sleep(0.02)
            return None
        frame = await track.recv()
        assert isinstance(frame, OutputFrame)  # only PassthroughTracks are attached
        # audio_level is typed int but only read for audio; None is what aiortc passes too.
        return RTCEncodedFrame(rtp_payloads(frame.unit), frame.timestamp, None)  # type: ignore[arg-type]

    sender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign,assignment]
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    missing = fast_send_supported(sender)
    if missing is None:
        return FastSender(sender, next_encoded_frame, workers)
    _warn_slow_path(missing)
    return None


@functools.cache
def _warn_slow_path(missing: str) -> None:
    log.warning("aiortc changed (%s): sending through its own, slower loop", missing)


def aiortc_hooks_present() -> bool:
    """True if aiortc still has the sender internals attach_passthrough replaces."""
    next_frame = getattr(RTCRtpSender, "_next_encoded_frame", None)
    send_keyframe = getattr(RTCRtpSender, "_send_keyframe", None)
    if next_frame is None or send_keyframe is None:
        return False
    params = list(inspect.signature(next_frame).parameters)
    fields = list(inspect.signature(RTCEncodedFrame).parameters)
    return (
        inspect.iscoroutinefunction(next_frame)
        and params == ["self", "codec"]
        and fields == ["payloads", "timestamp", "audio_level"]
        and callable(getattr(H264Encoder, "_packetize", None))
    )

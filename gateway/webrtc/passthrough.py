"""The camera's own H.264 pictures as an aiortc track, on either send path.

PassthroughTrack is an ordinary aiortc MediaStreamTrack: its recv() returns each picture
as an `av.Packet` (Annex-B, 90 kHz pts), which aiortc's sender packetizes as it is,
without decoding or encoding (aiortc's own passthrough of pre-encoded media). That is
the fallback send path, and it uses aiortc's public API only.

The fast path (`attach_fast_sender`) reads the same pictures without recv(): each one is
split into RTP payloads once for every viewer (cached on the AccessUnit) and sent by
camgate's own loop (gateway/webrtc/fastsend.py), and a viewer's PLI/FIR goes to the
camera hub, which asks the source for an IDR where it can.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from gateway.compat import aiortc as aiortc_compat
from gateway.feed import ViewerFeed
from gateway.media.accessunit import AccessUnit
from gateway.subscription import OutputFrame, SubscriptionClosed
from gateway.webrtc.avsync import MediaClock, ntp_of
from gateway.webrtc.fastsend import FastSender, Frame, SendWorkers

VIDEO_TIME_BASE = Fraction(1, 90_000)
_PAYLOAD_CACHE_KEY = "rtp-h264-payloads"


def rtp_payloads(unit: AccessUnit) -> list[bytes]:
    """RFC 6184 payloads (STAP-A/FU-A, packetization-mode 1) for one picture, computed once."""
    cached = unit.cache.get(_PAYLOAD_CACHE_KEY)
    if cached is None:
        cached = aiortc_compat.packetize(unit.nals)
        unit.cache[_PAYLOAD_CACHE_KEY] = cached
    return cached  # type: ignore[return-value]


def encoded_packet(frame: OutputFrame) -> av.Packet:
    """One picture as aiortc's sender takes pre-encoded H.264: its NAL units untouched."""
    packet = av.Packet(frame.unit.annexb())
    packet.pts = frame.timestamp
    packet.time_base = VIDEO_TIME_BASE
    return packet


class PassthroughTrack(MediaStreamTrack):
    """A video track whose frames are a camera's own H.264 pictures, from the viewer's
    feed (main or sub stream, switched under the same track: gateway/feed.py)."""

    kind = "video"

    def __init__(self, feed: ViewerFeed) -> None:
        super().__init__()
        self.feed = feed

    async def next_frame(self) -> OutputFrame:
        """The next picture; MediaStreamError once the track or its feed ended."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self.feed.get()
        except SubscriptionClosed:
            self.stop()
            raise MediaStreamError from None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return encoded_packet(await self.next_frame())

    def stop(self) -> None:
        self.feed.close()
        super().stop()


def attach_fast_sender(
    sender: RTCRtpSender,
    track: PassthroughTrack,
    on_keyframe_request: Callable[[], None],
    workers: SendWorkers | None = None,
    clock: MediaClock | None = None,
) -> FastSender:
    """Send `track`'s pictures through camgate's own loop (through `workers` when given)
    instead of aiortc's. Only when gateway.compat found every name this needs. `clock`:
    the camera's media clock its sender reports speak (shared with its audio)."""
    media_clock = clock or MediaClock()

    async def next_frame() -> Frame:
        frame = await track.next_frame()
        unit = frame.unit
        wall = media_clock.wall(unit.capture, unit.arrival)
        return Frame(rtp_payloads(unit), frame.timestamp, ntp_of(wall))

    return FastSender(sender, next_frame, workers, on_keyframe_request=on_keyframe_request)
